"""One pure function per maintenance topic: gateway data in, Findings with their fixes out. No I/O."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from ..catalog import Maintenance, TableSpec
from ..diagnostics.checks import check_slot
from ..gateways.aurora import Slot, VacuumStats
from ..gateways.dms import Series
from ..gateways.s3 import LifecycleRule
from ..humanize import byte_size, duration, sparkline
from ..models import SEVERITY, Status
from .report import Finding, Topic

# Below this many dead tuples a table is too small for bloat to matter to an export.
MIN_DEAD_TUPLES = 1_000
# More dead tuples than live ones: a full load would read more garbage than rows.
SEVERE_DEAD_RATIO = 1.0
# ALTER PIPE ... REFRESH queues files staged in the last 7 days: expiring sooner loses the retry.
MIN_RETENTION_DAYS = 7
_SLOT_NAME = re.compile(r"^[a-z0-9_]+$")  # PostgreSQL's own rule for replication slot names

# (warn, fail, higher is worse) per instance metric; bytes for memory, storage and swap.
_MiB, _GiB = 1024**2, 1024**3
INSTANCE_LIMITS = {
    "CPUUtilization": (75.0, 90.0, True),
    "FreeableMemory": (512 * _MiB, 256 * _MiB, False),
    "FreeStorageSpace": (10 * _GiB, 2 * _GiB, False),
    "SwapUsage": (256 * _MiB, 1 * _GiB, True),
}


# -- Vacuum ---------------------------------------------------------------------------------------

def vacuum_finding(spec: TableSpec, stats: VacuumStats | None, now: datetime, limits: Maintenance) -> Finding:
    if stats is None:
        return Finding(Topic.VACUUM, spec.source, Status.UNKNOWN,
                       f"{spec.source} is not in pg_stat_user_tables",
                       fix="Check that the catalog's `source` names the Aurora table and that the bot's role "
                           "can see it (`syncbot doctor` checks both).", table=spec.name)
    dead, live = stats.dead_tuples, stats.live_tuples
    ratio = dead / live if live else (float("inf") if dead else 0.0)
    last = stats.last_vacuumed
    age = now - last if last else None
    when = f"last vacuumed {duration(age.total_seconds())} ago" if age is not None else "never vacuumed"
    size = f", {byte_size(stats.total_bytes)} on disk" if stats.total_bytes is not None else ""
    summary = f"{dead:,} dead / {live:,} live tuples ({_percent(ratio)} dead){size}; {when}"
    details = (f"last_vacuum: {_stamp(stats.last_vacuum)}", f"last_autovacuum: {_stamp(stats.last_autovacuum)}")
    bloated = dead >= MIN_DEAD_TUPLES and ratio >= limits.dead_tuple_ratio
    stale = dead >= MIN_DEAD_TUPLES and (age is None or age > timedelta(days=limits.vacuum_age_days))
    if not (bloated or stale):
        return Finding(Topic.VACUUM, spec.source, Status.OK, summary, details=details, table=spec.name)
    vacuum = f"VACUUM (ANALYZE) {spec.source};"
    if bloated:
        status = Status.FAILING if ratio >= SEVERE_DEAD_RATIO else Status.WARNING
        return Finding(
            Topic.VACUUM, spec.source, status,
            summary + " — a DMS full load or reload would read every dead page too",
            fix="Vacuum it now; autovacuum is not keeping up, so make it start sooner on this table:",
            code=f"{vacuum}\nALTER TABLE {spec.source} SET (autovacuum_vacuum_scale_factor = 0.05);",
            details=details, table=spec.name)
    return Finding(Topic.VACUUM, spec.source, Status.WARNING,
                   summary + f" (dead tuples waiting more than {limits.vacuum_age_days} days for a vacuum)",
                   fix="Vacuum it, and check autovacuum is enabled for it (pg_class.reloptions):",
                   code=vacuum, details=details, table=spec.name)


# -- WAL retention and the replication slots ------------------------------------------------------

def wal_findings(slots: list[Slot], limits: Maintenance, owners: dict[str, str] | None = None,
                 unsure: tuple[str, ...] = ()) -> list[Finding]:
    """One finding per logical slot; the status comes from the diagnosis' own slot check. `owners`
    (slot -> DMS task, bot.diagnostics.slots.claim) names the catalog tasks' slots; with it, a slot
    no task reads is reported as WAL retained for nobody. `unsure`: tasks whose slot could not be told
    (their read failed, or several slots could be theirs): no slot is called nobody's while one is."""
    limit = int(limits.wal_limit_gb * _GiB)
    if not slots:
        result = check_slot([], limit)
        return [Finding(Topic.WAL, "logical replication slots", result.status, result.summary,
                        fix="DMS CDC from Aurora reads a logical slot: check rds.logical_replication = 1 in the "
                            "cluster parameter group and that the task is running; the bot's role must be able "
                            "to read pg_replication_slots.")]
    findings = []
    for slot in slots:
        summary = (f"{'active' if slot.active else 'inactive'}, wal_status {slot.wal_status or '?'}, "
                   f"retains {byte_size(slot.retained_bytes)} of WAL (limit {byte_size(limit)})")
        owner = (owners or {}).get(slot.name)
        if owners is not None and owner is None and not unsure and not slot.active:
            findings.append(_nobodys(slot, summary))
            continue
        result = check_slot([slot], limit)
        fix, code = _slot_fix(slot, limit) if result.status is not Status.OK else ("", "")
        details = (f"plugin: {slot.plugin}",) + ((f"read by DMS task {owner}",) if owner else ())
        if owners is not None and owner is None and slot.active:
            details += ("not the slot of any task in the catalog: something else reads it",)
        findings.append(Finding(Topic.WAL, slot.name, result.status, summary, fix, code, details))
    return findings


def _nobodys(slot: Slot, summary: str) -> Finding:
    """A slot no catalog task reads and nothing else has open: a deleted task's leftover, which keeps
    every WAL segment since its last read until it is dropped by hand."""
    drop = f"SELECT pg_drop_replication_slot('{slot.name}');" if _SLOT_NAME.match(slot.name) else ""
    return Finding(Topic.WAL, slot.name, Status.WARNING,
                   f"WAL retained for nobody: {byte_size(slot.retained_bytes)} held by a slot no DMS task of the "
                   f"catalog reads ({summary})",
                   fix="No task in the catalog uses this slot and nothing has it open: it is most likely left from a "
                       "deleted DMS task. If no other consumer needs it, drop it so Aurora can recycle the WAL:",
                   code=drop, details=(f"plugin: {slot.plugin}",) + ((f"database: {slot.database}",) if slot.database else ()))


def _slot_fix(slot: Slot, limit: int) -> tuple[str, str]:
    drop = f"SELECT pg_drop_replication_slot('{slot.name}');" if _SLOT_NAME.match(slot.name) else ""
    if slot.wal_status == "lost":
        return ("The slot lost WAL that DMS had not read, so CDC cannot resume from it. Re-sync the task's "
                "tables (runbook: Re-syncing a Table): drop the slot, then restart the task with reload-target "
                "so DMS takes a fresh full load and a new slot.", drop)
    if not slot.active:
        return ("No DMS task is reading this slot, so Aurora keeps every WAL segment since its last read. "
                "Resume the DMS task (StartReplicationTask, resume-processing); if no task uses this slot any "
                "more, drop it:", drop)
    if slot.wal_status == "unreserved":
        return ("The slot holds more WAL than max_slot_wal_keep_size allows and will lose it at a checkpoint "
                "unless DMS catches up: restart the task now and watch CDCLatencySource, then raise "
                "max_slot_wal_keep_size in the cluster parameter group.", "")
    return (f"DMS reads changes more slowly than Aurora writes them ({byte_size(slot.retained_bytes)} behind, limit "
            f"{byte_size(limit)}). Long-term (runbook: DMS Task Stalled): scale the replication instance or limit "
            "the task's scope; see the replication instance finding and CDCLatencySource.", "")


# -- The DMS replication instance -----------------------------------------------------------------

def instance_finding(instance: str, series: dict[str, Series]) -> Finding:
    seen = {m: s for m, s in series.items() if s.points}
    if not seen:
        return Finding(Topic.INSTANCE, instance, Status.UNKNOWN, "no CloudWatch datapoints in the last 24 hours",
                       fix="Check that the catalog's `dms_instance` is the replication instance's identifier "
                           "(its name) and that the instance is running.")
    marks = {metric: _metric_status(metric, s) for metric, s in seen.items()}
    status = min(marks.values(), key=SEVERITY.__getitem__)
    summary = ", ".join(_metric_text(metric, s) for metric, s in seen.items())
    details = tuple(_limit_text(metric, marks[metric]) for metric in seen)
    cpu = seen.get("CPUUtilization")
    trend = f"CPU {sparkline([v for _, v in cpu.points])}" if cpu else ""
    if status is Status.OK:
        return Finding(Topic.INSTANCE, instance, status, summary, details=details, trend=trend)
    hot = [m for m, s in marks.items() if s is not Status.OK]
    fixes = []
    if set(hot) & {"CPUUtilization", "FreeableMemory", "SwapUsage"}:
        fixes.append("Scale the replication instance to a larger class (ModifyReplicationInstance, "
                     "ReplicationInstanceClass), or limit the task's scope by moving the busiest tables to a task "
                     "of their own (runbook: DMS Task Stalled, long-term fixes).")
    if set(hot) & {"FreeableMemory", "SwapUsage"}:
        fixes.append("Short of memory, DMS spills changes to disk (CDCChangesDiskSource) and can stop the task "
                     "(STOPPED_DUE_TO_LOW_MEMORY).")
    if "FreeStorageSpace" in hot:
        fixes.append("Raise the instance's AllocatedStorage (ModifyReplicationInstance): a full disk stops the "
                     "task (STOPPED_DUE_TO_LOW_DISK).")
    return Finding(Topic.INSTANCE, instance, status, summary, " ".join(fixes), details=details, trend=trend)


def _metric_status(metric: str, series: Series) -> Status:
    warn, fail, higher_is_worse = INSTANCE_LIMITS[metric]
    values = [v for _, v in series.points]
    worst = max(values) if higher_is_worse else min(values)
    beyond = (lambda limit: worst >= limit) if higher_is_worse else (lambda limit: worst < limit)
    return Status.FAILING if beyond(fail) else Status.WARNING if beyond(warn) else Status.OK


def _limit_text(metric: str, status: Status) -> str:
    warn, fail, higher_is_worse = INSTANCE_LIMITS[metric]
    show = (lambda v: f"{v:.0f}%") if metric == "CPUUtilization" else (lambda v: byte_size(int(v)))
    side = "above" if higher_is_worse else "below"
    return f"{metric}: {status} (warning {side} {show(warn)}, failing {side} {show(fail)})"


def _metric_text(metric: str, series: Series) -> str:
    values = [v for _, v in series.points]
    if metric == "CPUUtilization":
        return f"CPU hourly average up to {max(values):.0f}%"
    if metric == "FreeableMemory":
        return f"freeable memory down to {byte_size(int(min(values)))}"
    if metric == "FreeStorageSpace":
        return f"free storage down to {byte_size(int(min(values)))}"
    return f"swap up to {byte_size(int(max(values)))}"


# -- S3 clean-up ----------------------------------------------------------------------------------

def lifecycle_finding(bucket: str, prefix: str, specs: list[TableSpec], rules: list[LifecycleRule],
                      limits: Maintenance) -> Finding:
    """Whether an enabled lifecycle rule expires every object under each table's CDC prefix."""
    cdc_prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
    subject = s3_subject(bucket, prefix)
    expiring = [r for r in rules if r.enabled and r.expires and not r.partial]
    uncovered = [s.name for s in specs if not any(s.s3_table_prefix.startswith(r.prefix) for r in expiring)]
    rule = {"ID": "syncbot-expire-cdc", "Status": "Enabled", "Filter": {"Prefix": cdc_prefix},
            "Expiration": {"Days": limits.cdc_retention_days}}
    add = ("Add this rule to the bucket's lifecycle configuration. PutBucketLifecycleConfiguration replaces "
           "the whole configuration, so send it together with the rules already there:")
    details = tuple(_rule_text(r, cdc_prefix) for r in rules)
    if not rules:
        return Finding(Topic.S3, subject, Status.WARNING,
                       "the bucket has no lifecycle configuration: CDC files are never deleted",
                       add, json.dumps(rule, indent=2))
    if len(uncovered) == len(specs):
        return Finding(Topic.S3, subject, Status.WARNING, f"no enabled lifecycle rule expires objects under {subject}",
                       add, json.dumps(rule, indent=2), details)
    if uncovered:
        return Finding(Topic.S3, subject, Status.WARNING,
                       f"lifecycle rules expire only some tables' CDC files; not those of {', '.join(uncovered)}",
                       add, json.dumps(rule, indent=2), details)
    used = [r for r in expiring if any(s.s3_table_prefix.startswith(r.prefix) for s in specs)]
    short = [r for r in used if r.expiration_days is not None and r.expiration_days < MIN_RETENTION_DAYS]
    if short:
        names = ", ".join(f"{r.id or '(no id)'} ({r.expiration_days} days)" for r in short)
        return Finding(Topic.S3, subject, Status.WARNING,
                       f"CDC files expire sooner than ALTER PIPE … REFRESH can reload them: {names}",
                       f"Raise the rule's Expiration Days to at least {MIN_RETENTION_DAYS} "
                       f"(the report suggests {limits.cdc_retention_days}).", details=details)
    names = ", ".join(f"'{r.id}'" if r.id else "(no id)" for r in used)
    return Finding(Topic.S3, subject, Status.OK, f"lifecycle rule {names} expires the CDC files", details=details)


def s3_subject(bucket: str, prefix: str) -> str:
    """Where the CDC files of a catalog prefix live: s3://bucket/prefix/."""
    return f"s3://{bucket}/{prefix.strip('/')}/" if prefix.strip("/") else f"s3://{bucket}/"


def _rule_text(rule: LifecycleRule, cdc_prefix: str) -> str:
    name = rule.id or "(no id)"
    expiry = (f"expires after {rule.expiration_days} days" if rule.expiration_days is not None
              else f"expires on {rule.expiration_date:%Y-%m-%d}" if rule.expiration_date else "does not expire objects")
    problems = [p for p, bad in (("disabled", not rule.enabled),
                                 (f"prefix {rule.prefix!r} is outside {cdc_prefix!r}",
                                  not cdc_prefix.startswith(rule.prefix) and not rule.prefix.startswith(cdc_prefix)),
                                 ("filters on tags or object size", rule.partial)) if bad]
    return f"rule {name}: prefix {rule.prefix or '(whole bucket)'}, {expiry}" + (
        f" — {'; '.join(problems)}" if problems else "")


def _percent(ratio: float) -> str:
    return "all" if ratio == float("inf") else f"{ratio:.0%}"


def _stamp(value: datetime | None) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC") if value else "never"
