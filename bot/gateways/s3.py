"""S3, where DMS writes a table's CDC files. The layout is the target endpoint's (bot.gateways.endpoints):

- flat (the default): <folder>/<schema>/<table>/<YYYYMMDD-HHMMSSsss>.csv;
- date partitions (DatePartitionEnabled): the same names in date folders under the table, e.g.
  <folder>/<schema>/<table>/2026/12/04/ for YYYYMMDD with SLASH;
- transactions (PreserveTransactions with CdcPath): every table's changes in
  <folder>/<CdcPath>/CDC_TXN-<time>.csv (date folders under it when partitioned too);
- parquet and gzip change only the extension, which the name's time does not depend on.

The DMS user guide, "Using Amazon S3 as a target for AWS DMS" (CHAP_Target.S3), names CDC files by time
("20141029-1134010000.csv") and full-load files LOAD00000001.csv…; with DatePartitionTimezone the folder and
the file name are both in that zone (botocore's S3Settings.DatePartitionTimezone).

Listings are bounded by the layout: they start after a time-derived key (StartAfter) where names sort by
time, and in a partitioned layout they read only the current and the previous date folder, so the cost
follows the number of recent files, never the number of old ones."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from typing import Any, Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from botocore.exceptions import ClientError

from . import GatewayError, NotFound
from .endpoints import PARTITION_DELIMITERS, PARTITION_SEQUENCES

# Widening windows: most healthy tables answer from the first; a dead one costs a few small calls.
WINDOWS = (timedelta(hours=1), timedelta(hours=6), timedelta(days=1), timedelta(days=7))
TXN_PREFIX = "CDC_TXN-"
_CDC_NAME = re.compile(r"^(?:CDC_TXN-)?(\d{4})(\d{2})(\d{2})-?(\d{2})(\d{2})(\d{2})(\d{3})")
_PARTITION_STEP = {"YYYYMMDDHH": timedelta(hours=1), "YYYYMM": None}  # None: a calendar month; else a day


@dataclass(frozen=True)
class CdcLayout:
    """Where one table's CDC files are, and how their names read."""

    bucket: str
    table_prefix: str  # <folder>/<schema>/<table>/: full-load files, and CDC files unless said otherwise
    cdc_base: str  # where CDC files (or their date folders) start: the table prefix, or <folder>/<CdcPath>/
    partition: str = ""  # DatePartitionSequence when date-partitioned, else ""
    delimiter: str = "SLASH"
    zone: str = ""  # DatePartitionTimezone ("" = UTC)
    shared: bool = False  # CDC_TXN files: every table's changes in one stream
    folder: str = ""  # BucketFolder (or the catalog's s3_prefix) the table prefix starts with

    @property
    def where(self) -> str:
        return f"s3://{self.bucket}/{self.cdc_base}"

    @property
    def tz(self) -> tzinfo:
        try:
            return ZoneInfo(self.zone) if self.zone else timezone.utc
        except (ZoneInfoNotFoundError, ValueError):
            return timezone.utc

    @property
    def name_prefix(self) -> str:
        return TXN_PREFIX if self.shared else ""

    def folders(self, now: datetime) -> tuple[str, ...]:
        """The prefixes a listing reads: the table's (or CdcPath's) folder, or the current and the
        previous date folder under it."""
        if not self.partition:
            return (self.cdc_base,)
        here = now.astimezone(self.tz)
        return (self.cdc_base + partition_folder(self.partition, self.delimiter, here),
                self.cdc_base + partition_folder(self.partition, self.delimiter, previous_partition(self.partition, here)))


def partition_folder(sequence: str, delimiter: str, moment: datetime) -> str:
    """The date folder DMS writes at `moment` (already in the partition's zone), with its slash."""
    parts = [moment.strftime(p) for p in PARTITION_SEQUENCES[sequence]]
    return PARTITION_DELIMITERS[delimiter].join(parts) + "/"


def partition_start(sequence: str, moment: datetime) -> datetime:
    """The first moment of the date folder `moment` falls in."""
    if sequence == "YYYYMMDDHH":
        return moment.replace(minute=0, second=0, microsecond=0)
    if sequence == "YYYYMM":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def previous_partition(sequence: str, moment: datetime) -> datetime:
    step = _PARTITION_STEP.get(sequence, timedelta(days=1))
    if step is None:  # the month before
        return (moment.replace(day=1) - timedelta(days=1))
    return moment - step


@dataclass(frozen=True)
class CdcFiles:
    newest_key: str | None
    # When DMS wrote the newest file, from its name (UTC): independent of S3's clock and of copies.
    newest_at: datetime | None
    last_hour: int  # CDC files named within the last hour
    searched: timedelta  # how far back we looked
    layout: CdcLayout | None = None
    listed: tuple[str, ...] = ()  # the prefixes read


def cdc_time(key: str, zone: tzinfo = timezone.utc) -> datetime | None:
    """The time DMS encoded in a CDC file's name (CDC_TXN- files too), in UTC; None for full-load
    (LOAD*) and other files. `zone`: the endpoint's DatePartitionTimezone, the zone the name is in."""
    match = _CDC_NAME.match(key.rsplit("/", 1)[-1])
    if not match:
        return None
    # Read field by field: strptime takes a process-wide lock on every call, and 32 listing threads
    # each read a few names per table.
    year, month, day, hour, minute, second, millis = map(int, match.groups())
    try:
        local = datetime(year, month, day, hour, minute, second, millis * 1000, tzinfo=zone)
    except ValueError:  # 20261340-... is digits, not a time
        return None
    return local.astimezone(timezone.utc)


def cdc_name(moment: datetime, extension: str = ".csv", shared: bool = False) -> str:
    """The name DMS gives a CDC file it writes at `moment` (in the name's zone), the one cdc_time reads
    back (the sandbox and the benchmark write their files with it)."""
    return ((TXN_PREFIX if shared else "") + moment.strftime("%Y%m%d-%H%M%S")
            + f"{moment.microsecond // 1000:03d}" + extension)


def cdc_key_after(prefix: str, moment: datetime, zone: tzinfo = timezone.utc, name_prefix: str = "") -> str:
    return prefix + name_prefix + moment.astimezone(zone).strftime("%Y%m%d-%H%M%S000")


class S3Gateway:
    def __init__(self, client: Any):
        self._s3 = client

    def recent_cdc_files(self, bucket: str, prefix: str, now: datetime) -> CdcFiles:
        """The flat layout under `prefix` (kept for callers that name a prefix themselves)."""
        return self.newest_cdc_files(CdcLayout(bucket, prefix, prefix), now)

    def newest_cdc_files(self, layout: CdcLayout, now: datetime) -> CdcFiles:
        """The newest CDC file of the layout and how many were named in the last hour. Each folder
        read (one, or two date folders) starts after the time of the window's start, widening
        while nothing is found; a date folder holds only its own period's files."""
        folders = layout.folders(now)
        zone = layout.tz
        # Two date folders hold at most two periods' files: the last hour first (a busy table answers
        # from it), else the folders from their start.
        windows = (WINDOWS[0], WINDOWS[-1]) if layout.partition else WINDOWS
        found: list[tuple[datetime, str]] = []
        searched = windows[-1]
        for window in windows:
            for folder in folders:
                found += self._list_after(layout.bucket, folder,
                                          cdc_key_after(folder, now - window, zone, layout.name_prefix), zone)
            if found:
                searched = window
                break
        if not found:
            if layout.partition:  # what the two folders cover, at most the widest window
                here = now.astimezone(zone)
                begun = partition_start(layout.partition, previous_partition(layout.partition, here))
                searched = min(searched, here - begun)
            return CdcFiles(None, None, 0, searched, layout, folders)
        stamp, key = max(found)
        hour_ago = now - timedelta(hours=1)
        return CdcFiles(key, stamp, sum(1 for when, _ in found if when >= hour_ago), searched, layout, folders)

    def _pages(self, bucket: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """ListObjectsV2's pages, followed by continuation token until the caller stops; a missing bucket
        is NotFound, any other refusal a GatewayError naming its code."""
        token = None
        while True:
            try:
                page = self._s3.list_objects_v2(Bucket=bucket, **kwargs,
                                                **({"ContinuationToken": token} if token else {}))
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "error")
                if code == "NoSuchBucket":
                    raise NotFound(f"bucket {bucket!r} does not exist") from None
                raise GatewayError(f"ListObjectsV2 failed: {code}") from None
            yield page
            if not page.get("IsTruncated"):
                return
            token = page["NextContinuationToken"]

    def _list_after(self, bucket: str, prefix: str, start_after: str, zone: tzinfo = timezone.utc
                    ) -> list[tuple[datetime, str]]:
        found = []
        for page in self._pages(bucket, Prefix=prefix, StartAfter=start_after):
            past_cdc_names = False
            for obj in page.get("Contents", []):
                stamp = cdc_time(obj["Key"], zone)
                if stamp is not None:
                    found.append((stamp, obj["Key"]))
                # Full-load files (LOAD00000001.csv) sort after every time-named file: stop at the first
                # key past the time-named ones, however many of them a big table left behind.
                rest = obj["Key"][len(prefix):]
                past_cdc_names = (rest[len(TXN_PREFIX):] if rest.startswith(TXN_PREFIX) else rest)[:1] > "9"
            if past_cdc_names:
                break
        return found

    def full_load_files(self, bucket: str, table_prefix: str, since: datetime) -> dict[str, str]:
        """The full-load files (LOAD00000001.csv…) directly under the table's folder written at or after
        `since` (S3's LastModified, an AWS time like DMS's FullLoadStartTime), as base name -> key: what a
        reload wrote again. One listing of the LOAD… names only; CDC files sort before them."""
        found: dict[str, str] = {}
        since = since.replace(microsecond=0)  # listings give LastModified to the second (".000Z")
        for page in self._pages(bucket, Prefix=table_prefix + "LOAD"):
            for obj in page.get("Contents", []):
                name = obj["Key"][len(table_prefix):]
                if "/" not in name and obj["LastModified"] >= since:
                    found[name] = obj["Key"]
        return found

    def lifecycle_rules(self, bucket: str) -> list[LifecycleRule]:
        """GetBucketLifecycleConfiguration's rules; a bucket without a configuration has none."""
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
