"""S3, where DMS writes CDC files named by time (YYYYMMDD-HHMMSSsss.csv) under <prefix>/<schema>/<table>/.

Listings start after a time-derived key (StartAfter), so the cost follows the number of recent files,
never the number of old ones under the prefix."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import ClientError

from . import GatewayError, NotFound

# Widening windows: most healthy tables answer from the first; a dead one costs a few small calls.
WINDOWS = (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=7))
_CDC_NAME = re.compile(r"^(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})(\d{3})")


@dataclass(frozen=True)
class CdcFiles:
    newest_key: str | None
    # When DMS wrote the newest file, from its name (UTC): independent of S3's clock and of copies.
    newest_at: datetime | None
    last_hour: int  # CDC files named within the last hour
    searched: timedelta  # how far back we looked


def cdc_time(key: str) -> datetime | None:
    """The time DMS encoded in a CDC file's name, or None for full-load (LOAD*) and other files."""
    match = _CDC_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    # Read field by field: strptime takes a process-wide lock on every call, and 32 listing threads
    # each read a few names per table.
    year, month, day, hour, minute, second, millis = map(int, match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=timezone.utc)
    except ValueError:  # 20261340-... is digits, not a time
        return None


def cdc_name(moment: datetime) -> str:
    """The name DMS gives a CDC file it writes at `moment` (UTC), the one cdc_time reads back (the
    sandbox and the benchmark write their files with it)."""
    return moment.strftime("%Y%m%d-%H%M%S") + f"{moment.microsecond // 1000:03d}.csv"


def cdc_key_after(prefix: str, moment: datetime) -> str:
    return prefix + moment.astimezone(timezone.utc).strftime("%Y%m%d-%H%M%S000")


class S3Gateway:
    def __init__(self, client: Any):
        self._s3 = client
        self.calls = 0

    def recent_cdc_files(self, bucket: str, prefix: str, now: datetime) -> CdcFiles:
        for window in WINDOWS:
            found = self._list_after(bucket, prefix, cdc_key_after(prefix, now - window))
            if found:
                stamp, key = max(found)
                hour_ago = now - timedelta(hours=1)
                recent = sum(1 for when, _ in found if when >= hour_ago)
                return CdcFiles(key, stamp, recent, window)
        return CdcFiles(None, None, 0, WINDOWS[-1])

    def _list_after(self, bucket: str, prefix: str, start_after: str) -> list[tuple[datetime, str]]:
        found = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "StartAfter": start_after}
            if token:
                kwargs["ContinuationToken"] = token
            self.calls += 1
            try:
                page = self._s3.list_objects_v2(**kwargs)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "error")
                if code == "NoSuchBucket":
                    raise NotFound(f"bucket {bucket!r} does not exist") from None
                raise GatewayError(f"ListObjectsV2 failed: {code}") from None
            past_cdc_names = False
            for obj in page.get("Contents", []):
                stamp = cdc_time(obj["Key"])
                if stamp is not None:
                    found.append((stamp, obj["Key"]))
                # Full-load files (LOAD00000001.csv) sort after every time-named file: stop there,
                # however many of them a big table left behind.
                past_cdc_names = obj["Key"][len(prefix):][:1] > "9"
            if not page.get("IsTruncated") or past_cdc_names:
                return found
            token = page["NextContinuationToken"]

    def lifecycle_rules(self, bucket: str) -> list[LifecycleRule]:
        """GetBucketLifecycleConfiguration's rules; a bucket without a configuration has none."""
        self.calls += 1
        try:
            rules = self._s3.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules", [])
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "error")
            if code == "NoSuchLifecycleConfiguration":
                return []
            if code == "NoSuchBucket":
                raise NotFound(f"bucket {bucket!r} does not exist") from None
            raise GatewayError(f"GetBucketLifecycleConfiguration failed: {code}") from None
        return [lifecycle_rule(raw) for raw in rules]


@dataclass(frozen=True)
class LifecycleRule:
    id: str
    enabled: bool
    prefix: str  # "" selects the whole bucket
    # Tags or object sizes in the filter: the rule reaches only some of the objects under its prefix.
    partial: bool
    expiration_days: int | None
    expiration_date: datetime | None

    @property
    def expires(self) -> bool:
        return self.expiration_days is not None or self.expiration_date is not None


def lifecycle_rule(raw: dict[str, Any]) -> LifecycleRule:
    """One rule as S3 returns it: Filter.Prefix, Filter.And{Prefix, Tags, sizes}, Filter.Tag, or the
    legacy rule-level Prefix."""
    flt = raw.get("Filter") or {}
    both = flt.get("And") or {}
    prefix = flt.get("Prefix", both.get("Prefix", raw.get("Prefix", ""))) or ""
    sizes = ("ObjectSizeGreaterThan", "ObjectSizeLessThan")
    partial = "Tag" in flt or bool(both.get("Tags")) or any(k in flt or k in both for k in sizes)
    expiration = raw.get("Expiration") or {}
    days = expiration.get("Days")
    return LifecycleRule(
        id=raw.get("ID", "") or "",
        enabled=raw.get("Status") == "Enabled",
        prefix=prefix,
        partial=partial,
        expiration_days=int(days) if days is not None else None,
        expiration_date=expiration.get("Date"),
    )
