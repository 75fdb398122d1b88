"""The catalog (TOML): which tables syncbot watches, with the runbook's naming conventions as defaults.

Identifiers that later reach SQL or AWS calls come only from here, so each is validated strictly
at load time; what users type is only ever matched against these values.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import cached_property
from pathlib import Path

from croniter import croniter

from .models import ActionKind

# Unquoted Snowflake/PostgreSQL identifiers, optionally schema-qualified (and database-qualified).
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$")
_SLACK_ID = re.compile(r"^[UWS][A-Z0-9]{2,}$")
_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{2,}$")
_DMS_ID = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,254}$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.\-/]*$")

_DEFAULT_KEYS = {
    "dms_task": "aurora-snowflake-cdc",
    "freshness_threshold_minutes": 120,
    "freshness_column": "UPDATED_AT",
}
# Optional overrides: unset, the task itself says them (its ReplicationInstanceArn, its S3 target
# endpoint's BucketName and BucketFolder); set, they win, and the diagnosis says where they differ.
_OVERRIDE_KEYS = ("dms_instance", "s3_bucket", "s3_prefix")
_TABLE_KEYS = {"name", "source", "staging_table", "final_table", "pipe", "merge_task", "owners"} | set(
    _DEFAULT_KEYS) | set(_OVERRIDE_KEYS)
_ACCESS_KEYS = {"approvers", "approval_ttl_minutes", "policies"}
_FIX_KINDS = {kind.value for kind in ActionKind}
_ALERT_KEYS = {"channels", "suppression_minutes"}
_MAINTENANCE_KEYS = {"channel", "schedule", "wal_limit_gb", "dead_tuple_ratio", "vacuum_age_days",
                     "cdc_retention_days"}
# A scheduled report more often than this would flood its channel.
_MIN_SCHEDULE_GAP = timedelta(hours=1)
_TOP_KEYS = {"defaults", "tables", "access", "alerts", "maintenance"}


class CatalogError(ValueError):
    """A catalog that cannot be trusted; the message names the file and line."""


@dataclass(frozen=True)
class TableSpec:
    name: str
    source: str  # Aurora schema.table
    staging_table: str
    final_table: str
    pipe: str
    merge_task: str
    freshness_column: str
    dms_task: str
    # Optional overrides (None: read from the task): the instance is compared case-insensitively, as
    # DMS stores instance identifiers lower-case.
    dms_instance: str | None
    s3_bucket: str | None
    s3_prefix: str | None
    freshness_threshold_minutes: int
    # Who answers for the table: Slack user ids (U…/W…) or usergroup ids (S…), named when it is not
    # Healthy. A table's own list replaces [defaults]'.
    owners: tuple[str, ...] = ()

    @property
    def source_schema(self) -> str:
        return self.source.split(".")[0]

    @property
    def source_table(self) -> str:
        return self.source.split(".")[1]

    @property
    def s3_table_prefix(self) -> str:
        """Where DMS writes this table's files by the catalog's prefix: <prefix>/<schema>/<table>/ (the
        diagnosis reads the real layout from the task's target endpoint: bot.diagnostics.layout)."""
        base = (self.s3_prefix or "").strip("/")
        parts = [p for p in (base, self.source_schema, self.source_table) if p]
        return "/".join(parts) + "/"


@dataclass(frozen=True)
class Access:
    approvers: tuple[str, ...] = ()
    approval_ttl_minutes: int = 30
    # Per-action approver counts from [access.policies]; the code's table sets the floor.
    policies: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Alerts:
    channels: tuple[str, ...] = ()
    suppression_minutes: int = 15


@dataclass(frozen=True)
class Maintenance:
    """[maintenance]: where and when the maintenance report is posted, and its limits."""

    channel: str | None = None
    schedule: str | None = None  # cron expression, UTC
    wal_limit_gb: float = 10.0  # retained WAL per logical slot before it is a warning
    dead_tuple_ratio: float = 0.2  # dead/live tuples; autovacuum's own default scale factor
    vacuum_age_days: int = 7  # a table with dead tuples not vacuumed for longer is a warning
    cdc_retention_days: int = 14  # the expiry of the S3 lifecycle rule the report suggests

    @property
    def scheduled(self) -> bool:
        return bool(self.channel and self.schedule)


@dataclass(frozen=True)
class Catalog:
    tables: tuple[TableSpec, ...]
    access: Access = Access()
    alerts: Alerts = Alerts()
    maintenance: Maintenance = Maintenance()

    def find(self, text: str) -> TableSpec | None:
        """A table by its name, its Aurora source or its final table name, case-insensitively; else
        by the final table's bare name ("orders" finds PUBLIC.ORDERS). The first in the file wins."""
        key = text.strip().lower()
        exact, bare = self._names
        return exact.get(key) or bare.get(key)

    @cached_property
    def _names(self) -> tuple[dict[str, TableSpec], dict[str, TableSpec]]:
        # Every command and alert looks a table up: an index, not a scan of a 500-table fleet.
        exact: dict[str, TableSpec] = {}
        bare: dict[str, TableSpec] = {}
        for spec in self.tables:
            for name in (spec.name, spec.source, spec.final_table):
                exact.setdefault(name.lower(), spec)
            bare.setdefault(spec.final_table.split(".")[-1].lower(), spec)
        return exact, bare

    def suggestions(self, text: str, limit: int = 3) -> list[str]:
        import difflib

        names = [s.name for s in self.tables]
        close = difflib.get_close_matches(text.strip().lower(), [n.lower() for n in names], n=limit, cutoff=0.5)
        by_lower = {n.lower(): n for n in names}
        return [by_lower[c] for c in close]

    def tasks(self) -> dict[str, list[TableSpec]]:
        grouped: dict[str, list[TableSpec]] = {}
        for spec in self.tables:
            grouped.setdefault(spec.dms_task, []).append(spec)
        return grouped


def load_catalog(path: str | Path) -> Catalog:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc.strerror})") from None
    return parse_catalog(text, str(path))


def parse_catalog(text: str, origin: str = "syncbot.toml") -> Catalog:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CatalogError(f"{origin}: {exc}") from None
    where = _Locator(text, origin)
    _reject_unknown(data, _TOP_KEYS, where, "")
    defaults = dict(_DEFAULT_KEYS)
    given_defaults = data.get("defaults", {})
    _reject_unknown(given_defaults, set(_DEFAULT_KEYS) | set(_OVERRIDE_KEYS) | {"owners"}, where, "[defaults]")
    defaults.update(given_defaults)
    tables = tuple(_table(raw, defaults, where, i) for i, raw in enumerate(data.get("tables", [])))
    if not tables:
        raise CatalogError(f"{origin}: no [[tables]] entries; the catalog must name at least one table")
    _reject_duplicates(tables, where)
    return Catalog(
        tables=tables,
        access=_access(data.get("access", {}), where),
        alerts=_alerts(data.get("alerts", {}), where),
        maintenance=_maintenance(data.get("maintenance", {}), where),
    )


def _table(raw: dict, defaults: dict, where: _Locator, index: int) -> TableSpec:
    _reject_unknown(raw, _TABLE_KEYS, where, "[[tables]]", index)
    for required in ("name", "source"):
        if required not in raw:
            raise CatalogError(f"{where.table_line(index)}: [[tables]] entry needs `{required}`")
    values = {**defaults, **raw}
    base = values["source"].split(".")[-1].upper()
    values.setdefault("staging_table", f"STAGING.{base}_CDC")
    values.setdefault("final_table", f"PUBLIC.{base}")
    values.setdefault("pipe", f"STAGING.{base}_PIPE")
    values.setdefault("merge_task", f"STAGING.{base}_MERGE")

    def check(key: str, ok: bool, what: str) -> None:
        if not ok:
            raise CatalogError(f"{where.key_line(key, index)}: `{key}` = {values[key]!r} is not {what}")

    check("name", isinstance(values["name"], str) and bool(_NAME.match(values["name"])), "a simple name")
    check("source", _qualified(values["source"], parts=(2,)), "an Aurora schema.table")
    for key in ("staging_table", "final_table", "pipe", "merge_task"):
        check(key, _qualified(values[key], parts=(2, 3)), "a schema-qualified Snowflake identifier")
    check("freshness_column", _qualified(values["freshness_column"], parts=(1,)), "a column name")
    check("dms_task", bool(_DMS_ID.match(str(values["dms_task"]))), "a DMS task identifier")
    for key, pattern, what in (("dms_instance", _DMS_ID, "a DMS instance identifier"),
                               ("s3_bucket", _BUCKET, "an S3 bucket name"), ("s3_prefix", _PREFIX, "an S3 prefix")):
        if key in values:
            check(key, isinstance(values[key], str) and bool(pattern.match(values[key])), what)
    owners = values.get("owners", [])
    check("owners", isinstance(owners, list), "a list of Slack user or usergroup ids")
    for owner in owners:
        if not isinstance(owner, str) or not _SLACK_ID.match(owner):
            raise CatalogError(f"{where.key_line('owners', index)}: owner {owner!r} is not a Slack user (U…, W…) "
                               "or usergroup (S…) id")
    minutes = values["freshness_threshold_minutes"]
    check("freshness_threshold_minutes", isinstance(minutes, int) and 0 < minutes <= 60 * 24 * 30, "1..43200")
    return TableSpec(
        name=values["name"],
        source=values["source"].lower(),
        staging_table=values["staging_table"].upper(),
        final_table=values["final_table"].upper(),
        pipe=values["pipe"].upper(),
        merge_task=values["merge_task"].upper(),
        freshness_column=values["freshness_column"].upper(),
        dms_task=values["dms_task"],
        dms_instance=values.get("dms_instance"),
        s3_bucket=values.get("s3_bucket"),
        s3_prefix=values.get("s3_prefix"),
        freshness_threshold_minutes=minutes,
        owners=tuple(owners),
    )


def _qualified(value: object, parts: tuple[int, ...]) -> bool:
    if not isinstance(value, str):
        return False
    pieces = value.split(".")
    return len(pieces) in parts and all(_IDENT.match(p) for p in pieces)


def _access(raw: dict, where: _Locator) -> Access:
    _reject_unknown(raw, _ACCESS_KEYS, where, "[access]")
    approvers = raw.get("approvers", [])
    for user in approvers:
        if not isinstance(user, str) or not _SLACK_ID.match(user):
            raise CatalogError(f"{where.value_line(user)}: approver {user!r} is not a Slack user or usergroup id")
    ttl = raw.get("approval_ttl_minutes", 30)
    if not isinstance(ttl, int) or not 1 <= ttl <= 24 * 60:
        raise CatalogError(f"{where.key_line('approval_ttl_minutes')}: approval_ttl_minutes must be 1..1440")
    policies = raw.get("policies", {})
    for action, count in policies.items():
        if action not in _FIX_KINDS:
            raise CatalogError(f"{where.key_line(action)}: [access.policies] has no fix called `{action}` "
                               f"(known: {', '.join(sorted(_FIX_KINDS))})")
        if not isinstance(count, int) or not 1 <= count <= 5:
            raise CatalogError(f"{where.key_line(action)}: policy for {action!r} must be 1..5 approvers")
    return Access(tuple(approvers), ttl, dict(policies))


def _alerts(raw: dict, where: _Locator) -> Alerts:
    _reject_unknown(raw, _ALERT_KEYS, where, "[alerts]")
    channels = raw.get("channels", [])
    for channel in channels:
        if not isinstance(channel, str) or not _CHANNEL_ID.match(channel):
            raise CatalogError(f"{where.value_line(channel)}: alert channel {channel!r} is not a Slack channel id")
    minutes = raw.get("suppression_minutes", 15)
    if not isinstance(minutes, int) or not 0 <= minutes <= 24 * 60:
        raise CatalogError(f"{where.key_line('suppression_minutes')}: suppression_minutes must be 0..1440")
    return Alerts(tuple(channels), minutes)


def _maintenance(raw: dict, where: _Locator) -> Maintenance:
    _reject_unknown(raw, _MAINTENANCE_KEYS, where, "[maintenance]")
    defaults = Maintenance()

    def line(key: str) -> str:
        return where.section_key_line("maintenance", key)

    def number(key: str, low: float, high: float, integer: bool = False) -> float:
        value = raw.get(key, getattr(defaults, key))
        kinds = (int,) if integer else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not low <= value <= high:
            what = "a whole number" if integer else "a number"
            raise CatalogError(f"{line(key)}: `{key}` must be {what} from {low:g} to {high:g}")
        return value

    channel, schedule = raw.get("channel"), raw.get("schedule")
    if channel is not None and (not isinstance(channel, str) or not _CHANNEL_ID.match(channel)):
        raise CatalogError(f"{line('channel')}: maintenance channel {channel!r} is not a Slack channel id")
    if schedule is not None:
        _check_schedule(schedule, line("schedule"))
    if (channel is None) != (schedule is None):
        missing, given = ("schedule", "channel") if schedule is None else ("channel", "schedule")
        raise CatalogError(f"{line(given)}: [maintenance] `{given}` needs a `{missing}` too")
    return Maintenance(
        channel=channel,
        schedule=schedule,
        wal_limit_gb=float(number("wal_limit_gb", 0.01, 100_000)),
        dead_tuple_ratio=float(number("dead_tuple_ratio", 0.01, 100)),
        vacuum_age_days=int(number("vacuum_age_days", 1, 365, integer=True)),
        cdc_retention_days=int(number("cdc_retention_days", 1, 3650, integer=True)),
    )


def _check_schedule(schedule: object, line: str) -> None:
    if not isinstance(schedule, str) or not croniter.is_valid(schedule):
        raise CatalogError(f"{line}: maintenance schedule {schedule!r} is not a cron expression "
                           "(e.g. \"0 8 * * MON\", minute hour day month weekday, UTC)")
    # The tightest gap over a few weeks of fire times catches "*/5 * * * *" and "0 * * * *" alike.
    fires = croniter(schedule, datetime(2024, 1, 1, tzinfo=timezone.utc))
    times = [fires.get_next(datetime) for _ in range(64)]
    if min(b - a for a, b in zip(times, times[1:])) < _MIN_SCHEDULE_GAP:
        raise CatalogError(f"{line}: maintenance schedule {schedule!r} fires more often than hourly; "
                           "the report would flood its channel")


def _reject_unknown(raw: dict, allowed: set[str], where: _Locator, section: str, index: int | None = None) -> None:
    if not isinstance(raw, dict):
        raise CatalogError(f"{where.origin}: {section or 'top level'} must be a table")
    for key in raw:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise CatalogError(f"{where.key_line(key, index)}: unknown key `{key}` in {section or 'top level'} (known: {known})")


def _reject_duplicates(tables: tuple[TableSpec, ...], where: _Locator) -> None:
    seen: dict[str, int] = {}
    for i, spec in enumerate(tables):
        for key in {spec.name.lower(), spec.source, spec.final_table.lower()}:
            if key in seen and seen[key] != i:
                raise CatalogError(f"{where.table_line(i)}: duplicate table {key!r} (also in entry {seen[key] + 1})")
            seen[key] = i


class _Locator:
    """Finds the line a key or value sits on, so errors point at the file's own text."""

    def __init__(self, text: str, origin: str):
        self.origin = origin
        self.lines = text.splitlines()
        self.table_starts = [n for n, line in enumerate(self.lines) if line.strip().startswith("[[tables]]")]

    def _fmt(self, index: int) -> str:
        return f"{self.origin}, line {index + 1}"

    def table_line(self, index: int) -> str:
        if index < len(self.table_starts):
            return self._fmt(self.table_starts[index])
        return self.origin

    def key_line(self, key: str, index: int | None = None) -> str:
        start, end = 0, len(self.lines)
        if index is not None and index < len(self.table_starts):
            start = self.table_starts[index]
            end = self.table_starts[index + 1] if index + 1 < len(self.table_starts) else end
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        # Look in the entry first, then anywhere (a bad value may be inherited from [defaults]).
        for n in [*range(start, end), *range(len(self.lines))]:
            if pattern.match(self.lines[n]):
                return self._fmt(n)
        return self.table_line(index) if index is not None else self.origin

    def section_key_line(self, section: str, key: str) -> str:
        """The line of `key` inside [section], else the section's header, else the file."""
        header = re.compile(rf"^\s*\[\s*{re.escape(section)}\s*\]")
        starts = [n for n, line in enumerate(self.lines) if header.match(line)]
        if not starts:
            return self.origin
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for n in range(starts[0] + 1, len(self.lines)):
            if self.lines[n].lstrip().startswith("["):
                break
            if pattern.match(self.lines[n]):
                return self._fmt(n)
        return self._fmt(starts[0])

    def value_line(self, value: object) -> str:
        needle = f'"{value}"'
        for n, line in enumerate(self.lines):
            if needle in line:
                return self._fmt(n)
        return self.origin
