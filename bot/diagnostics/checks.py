"""One pure function per runbook check: gateway data in, CheckResult out. No I/O here."""
from __future__ import annotations

from datetime import datetime, timedelta

from ..catalog import TableSpec
from ..gateways.aurora import PgColumn, Slot
from ..gateways.dms import TABLE_STATES_BAD, Series, TableStat, TaskInfo
from ..gateways.s3 import CdcFiles
from ..gateways.snowflake import LoadRecord, PipeStatus
from ..humanize import byte_size, duration, sparkline
from ..models import CheckName, CheckResult, Status
from .typemap import snowflake_type

LATENCY_WARN_S = 300  # 5 minutes behind
LATENCY_FAIL_S = 1800  # 30 minutes behind: the dashboard will go stale soon
SLOT_WARN_BYTES = 10 * 1024**3  # 10 GiB of WAL held back
COLUMN_MISMATCH = "number of columns in file"
_TABLE_STATE_OK = ("table completed", "full load", "before load")
_TABLE_STATE_BAD = TABLE_STATES_BAD
_MAX_LISTED = 5


def check_dms(task: TaskInfo, stat: TableStat | None) -> CheckResult:
    running = task.status == "running"
    details = [f"Status: {task.status}"]
    if task.stop_reason:
        details.append(f"StopReason: {task.stop_reason}")
    if task.last_failure_message:
        details.append(f"LastFailureMessage: {task.last_failure_message}")
    details.append(f"TablesErrored: {task.tables_errored}")
    state = stat.state if stat else ""
    details.append(f"TableState: {state or 'not in the task statistics'}")
    if stat:
        details.append(f"Changes captured: {stat.inserts} inserts, {stat.updates} updates, {stat.deletes} deletes")
    facts = {"task_status": task.status, "running": running, "table_state": state,
             "table_errored": state.lower() in _TABLE_STATE_BAD}
    if not running:
        why = f" ({task.stop_reason})" if task.stop_reason else ""
        return CheckResult(CheckName.DMS, Status.FAILING, f"task {task.identifier} is {task.status}{why}",
                           tuple(details), facts)
    if facts["table_errored"]:
        return CheckResult(CheckName.DMS, Status.FAILING, f"task is running but the table is in '{state}'",
                           tuple(details), facts)
    if stat is None or state.lower() not in _TABLE_STATE_OK or task.tables_errored:
        return CheckResult(CheckName.DMS, Status.WARNING,
                           f"task is running; table state '{state or 'missing'}', {task.tables_errored} tables errored",
                           tuple(details), facts)
    return CheckResult(CheckName.DMS, Status.OK, f"task {task.identifier} is running; table state: {state}",
                       tuple(details), facts)


def check_latency(series: dict[str, Series]) -> CheckResult:
    source, target = series.get("CDCLatencySource"), series.get("CDCLatencyTarget")
    latest = [s.latest for s in (source, target) if s and s.latest is not None]
    trend = " ".join(f"{name[10:]} {sparkline([v for _, v in s.points])}" for name, s in series.items() if s.points)
    if not latest:
        return CheckResult(CheckName.LATENCY, Status.WARNING, "no CDC latency datapoints in the last 3 hours",
                           facts={"latency_s": None, "high": False})
    worst = max(latest)
    text = ", ".join(f"{name[10:]} {duration(s.latest)}" for name, s in series.items() if s.latest is not None)
    facts = {"latency_s": worst, "high": worst >= LATENCY_FAIL_S}
    status = Status.FAILING if worst >= LATENCY_FAIL_S else Status.WARNING if worst >= LATENCY_WARN_S else Status.OK
    return CheckResult(CheckName.LATENCY, status, f"latest {text}", facts=facts, trend=trend)


def check_s3(files: CdcFiles, spec: TableSpec, now: datetime) -> CheckResult:
    where = f"s3://{spec.s3_bucket}/{spec.s3_table_prefix}"
    if files.newest_key is None:
        days = files.searched.days or 1
        return CheckResult(CheckName.S3, Status.FAILING, f"no CDC files in the last {days} days under {where}",
                           facts={"files_landing": False, "newest_age_s": None})
    age = (now - files.newest_at).total_seconds() if files.newest_at else None
    details = (f"Newest: {files.newest_key}", f"Files in the last hour: {files.last_hour}")
    facts = {"files_landing": files.last_hour > 0, "newest_age_s": age}
    if files.last_hour == 0:
        return CheckResult(CheckName.S3, Status.WARNING,
                           f"no CDC files in the last hour; newest is {duration(age)} old", details, facts)
    return CheckResult(CheckName.S3, Status.OK,
                       f"{files.last_hour} files in the last hour; newest {duration(age)} old", details, facts)


def check_snowpipe(pipe: PipeStatus, history: list[LoadRecord], spec: TableSpec) -> CheckResult:
    failed = [r for r in history if r.failed]
    mismatch = any(COLUMN_MISMATCH in r.first_error_message.lower() for r in failed)
    details = [f"executionState: {pipe.execution_state}", f"pendingFileCount: {pipe.pending_file_count}",
               f"lastIngestedTimestamp: {pipe.last_ingested_at.isoformat() if pipe.last_ingested_at else 'never'}"]
    if pipe.error:
        details.append(f"error: {pipe.error}")
    for record in failed[:_MAX_LISTED]:
        details.append(f"{record.status}: {record.file_name} — {record.first_error_message}")
    if len(failed) > _MAX_LISTED:
        details.append(f"… and {len(failed) - _MAX_LISTED} more failed files")
    facts = {"pipe_state": pipe.execution_state, "running": pipe.execution_state == "RUNNING",
             "failed_files": [r.file_name for r in failed], "column_mismatch": mismatch,
             "pending": pipe.pending_file_count, "loaded_recently": any(r.status.lower() == "loaded" for r in history)}
    if pipe.execution_state != "RUNNING":
        summary = f"pipe {spec.pipe} is {pipe.execution_state}"
        return CheckResult(CheckName.SNOWPIPE, Status.FAILING, summary, tuple(details), facts)
    if failed:
        summary = f"{len(failed)} files failed to load in the last 4 hours"
        if mismatch:
            summary += " (column count mismatch)"
        return CheckResult(CheckName.SNOWPIPE, Status.FAILING, summary, tuple(details), facts)
    if pipe.error:
        return CheckResult(CheckName.SNOWPIPE, Status.WARNING, f"pipe reports an error: {pipe.error}",
                           tuple(details), facts)
    loaded = sum(1 for r in history if r.status.lower() == "loaded")
    return CheckResult(CheckName.SNOWPIPE, Status.OK,
                       f"pipe running; {loaded} files loaded in the last 4 hours, {pipe.pending_file_count} pending",
                       tuple(details), facts)


def check_freshness(newest: datetime | None, spec: TableSpec, now: datetime) -> CheckResult:
    limit = timedelta(minutes=spec.freshness_threshold_minutes)
    where = f"{spec.final_table}.{spec.freshness_column}"
    if newest is None:
        return CheckResult(CheckName.FRESHNESS, Status.FAILING, f"{spec.final_table} has no rows",
                           facts={"stale": True, "age_s": None})
    age = now - newest
    facts = {"stale": age > limit, "age_s": age.total_seconds()}
    if age > limit:
        return CheckResult(CheckName.FRESHNESS, Status.FAILING,
                           f"stale: newest row is {duration(age.total_seconds())} old (limit {duration(limit.total_seconds())})",
                           (f"max({where})",), facts)
    status = Status.WARNING if age > limit / 2 else Status.OK
    return CheckResult(CheckName.FRESHNESS, status, f"newest row is {duration(age.total_seconds())} old",
                       (f"max({where}) within {duration(limit.total_seconds())}",), facts)


def check_schema(aurora: list[PgColumn], final: dict[str, str], staging: dict[str, str],
                 spec: TableSpec) -> CheckResult:
    missing = {spec.final_table: _missing(aurora, final), spec.staging_table: _missing(aurora, staging)}
    # Runbook order: final table first, then staging.
    alters = [f"ALTER TABLE {table} ADD COLUMN {col.name.upper()} {snowflake_type(col)};"
              for table, cols in missing.items() for col in cols]
    facts = {"missing": {t: [c.name.upper() for c in cols] for t, cols in missing.items() if cols},
             "alters": alters}
    if not alters:
        return CheckResult(CheckName.SCHEMA, Status.OK,
                           f"all {len(aurora)} Aurora columns exist in final and staging tables", facts=facts)
    names = sorted({c.name.upper() for cols in missing.values() for c in cols})
    return CheckResult(CheckName.SCHEMA, Status.FAILING,
                       f"Aurora has {len(names)} column(s) Snowflake lacks: {', '.join(names)}",
                       tuple(alters), facts)


def check_slot(slots: list[Slot], warn_bytes: int = SLOT_WARN_BYTES) -> CheckResult:
    if not slots:
        return CheckResult(CheckName.SLOT, Status.WARNING,
                           "no logical replication slot visible (DMS slot missing, or role cannot see it)",
                           facts={"slot_problem": False})
    details = tuple(
        f"{s.name} ({s.plugin}): active={s.active}, wal_status={s.wal_status or '?'}, "
        f"retained WAL {byte_size(s.retained_bytes)}" for s in slots)
    lost = [s.name for s in slots if s.wal_status == "lost"]
    inactive = [s.name for s in slots if not s.active]
    at_risk = [s.name for s in slots if s.wal_status == "unreserved"
               or (s.retained_bytes or 0) >= warn_bytes]
    facts = {"slot_problem": bool(lost or inactive or at_risk), "lost": lost, "inactive": inactive}
    if lost:
        return CheckResult(CheckName.SLOT, Status.FAILING,
                           f"slot {', '.join(lost)} lost its WAL: DMS cannot resume, a re-sync is needed",
                           details, facts)
    if inactive or at_risk:
        what = [f"{n} inactive" for n in inactive] + [f"{n} holding too much WAL" for n in at_risk]
        return CheckResult(CheckName.SLOT, Status.WARNING, "; ".join(what), details, facts)
    return CheckResult(CheckName.SLOT, Status.OK, f"{len(slots)} logical slot(s) active", details, facts)


def _missing(aurora: list[PgColumn], snowflake: dict[str, str]) -> list[PgColumn]:
    return [col for col in aurora if col.name.upper() not in snowflake]
