"""One pure function per runbook check: gateway data in, CheckResult out. No I/O here."""
from __future__ import annotations

import itertools
import re
from datetime import datetime, timedelta

from croniter import croniter

from ..catalog import TableSpec
from ..gateways.aurora import PgColumn, RowCount, Slot
from ..gateways.dms import TABLE_STATES_BAD, Series, TableStat, TaskInfo
from ..gateways.endpoints import S3Target
from .layout import Listed
from ..gateways.snowflake import (
    TASK_HISTORY_HOURS, LoadRecord, PipeStatus, SfColumn, TaskRun, TaskState, column_ddl, latest_attempts,
    plain_identifier,
)
from ..humanize import byte_size, duration, sparkline
from ..models import CheckName, CheckResult, Status, utcnow
from .typemap import TypeGap, snowflake_type, type_gap

LATENCY_WARN_S = 300  # 5 minutes behind
LATENCY_FAIL_S = 1800  # 30 minutes behind: the dashboard will go stale soon
SLOT_WARN_BYTES = 10 * 1024**3  # 10 GiB of WAL held back
COLUMN_MISMATCH = "number of columns in file"
# Snowpipe's errors for a value its column cannot hold: a column widened in Aurora, not in Snowflake.
TYPE_ERRORS = ("character length limit", "numeric value", "out of range")
_TABLE_STATE_OK = ("table completed", "full load", "before load")
_TABLE_STATE_BAD = TABLE_STATES_BAD
_MAX_LISTED = 5


def check_dms(task: TaskInfo, stat: TableStat | None, stats_error: str = "") -> CheckResult:
    """The task's own status always; the table's state when DescribeTableStatistics answered
    (`stats_error` says why it did not: the table state is then unknown, the task's status stands)."""
    running = task.status == "running"
    details = [f"Status: {task.status}"]
    if task.migration_type:
        details.append(f"MigrationType: {task.migration_type}")
    if task.stop_reason:
        details.append(f"StopReason: {task.stop_reason}")
    if task.last_failure_message:
        details.append(f"LastFailureMessage: {task.last_failure_message}")
    details.append(f"TablesErrored: {task.tables_errored}")
    state = stat.state if stat else ""
    if stats_error:
        details.append(f"TableState: unknown (table statistics not read: {stats_error})")
    else:
        details.append(f"TableState: {state or 'not in the task statistics'}")
    if stat:
        details.append(f"Changes captured: {stat.inserts} inserts, {stat.updates} updates, {stat.deletes} deletes")
    facts = {"task_status": task.status, "running": running, "table_state": state,
             "table_errored": state.lower() in _TABLE_STATE_BAD, "migration_type": task.migration_type,
             "never_ran": task.never_ran, "reloads_tables": task.reloads_tables,
             "table_state_known": not stats_error}
    if not running:
        why = f" ({task.stop_reason})" if task.stop_reason else ""
        if task.never_ran:
            why = " and has never run: it starts with start-replication"
        return CheckResult(CheckName.DMS, Status.FAILING, f"task {task.identifier} is {task.status}{why}",
                           tuple(details), facts)
    if facts["table_errored"]:
        return CheckResult(CheckName.DMS, Status.FAILING, f"task is running but the table is in '{state}'",
                           tuple(details), facts)
    if stats_error:
        return CheckResult(CheckName.DMS, Status.WARNING,
                           f"task {task.identifier} is running; the table's state is unknown ({stats_error})",
                           tuple(details), facts)
    if stat is None or state.lower() not in _TABLE_STATE_OK or task.tables_errored:
        return CheckResult(CheckName.DMS, Status.WARNING,
                           f"task is running; table state '{state or 'missing'}', {task.tables_errored} tables errored",
                           tuple(details), facts)
    return CheckResult(CheckName.DMS, Status.OK, f"task {task.identifier} is running; table state: {state}",
                       tuple(details), facts)


def check_latency(series: dict[str, Series], notes: tuple[str, ...] = ()) -> CheckResult:
    source, target = series.get("CDCLatencySource"), series.get("CDCLatencyTarget")
    latest = [s.latest for s in (source, target) if s and s.latest is not None]
    trend = " ".join(f"{name[10:]} {sparkline([v for _, v in s.points])}" for name, s in series.items() if s.points)
    if not latest:
        return CheckResult(CheckName.LATENCY, Status.WARNING, "no CDC latency datapoints in the last 3 hours",
                           notes, facts={"latency_s": None, "high": False})
    worst = max(latest)
    text = ", ".join(f"{name[10:]} {duration(s.latest)}" for name, s in series.items() if s.latest is not None)
    facts = {"latency_s": worst, "high": worst >= LATENCY_FAIL_S}
    status = Status.FAILING if worst >= LATENCY_FAIL_S else Status.WARNING if worst >= LATENCY_WARN_S else Status.OK
    return CheckResult(CheckName.LATENCY, status, f"latest {text}", notes, facts=facts, trend=trend)


def check_s3(listed: Listed, spec: TableSpec, now: datetime) -> CheckResult:
    """The newest CDC file in the layout the task's target endpoint gives (bot.diagnostics.layout)."""
    located, files = listed.located, listed.files
    notes = located.notes
    if located.layout is None or files is None:
        return CheckResult(CheckName.S3, Status.UNKNOWN, "unknown: cannot tell where DMS writes this table's files",
                           notes)
    layout = files.layout or located.layout
    where = " and ".join(f"s3://{layout.bucket}/{p}" for p in files.listed) or layout.where
    shared = (f"CDC_TXN files under {layout.where} hold every table's changes (PreserveTransactions): a "
              "new file shows the task writes, not that this table changed",) if layout.shared else ()
    if files.newest_key is None:
        return CheckResult(CheckName.S3, Status.FAILING,
                           f"no CDC files in the last {duration(files.searched.total_seconds())} under {where}",
                           notes + shared, facts={"files_landing": False, "newest_age_s": None})
    age = (now - files.newest_at).total_seconds() if files.newest_at else None
    details = (f"Newest: {files.newest_key}", f"Files in the last hour: {files.last_hour}") + shared + notes
    facts = {"files_landing": files.last_hour > 0, "newest_age_s": age}
    if files.last_hour == 0:
        return CheckResult(CheckName.S3, Status.WARNING,
                           f"no CDC files in the last hour; newest is {duration(age)} old", details, facts)
    return CheckResult(CheckName.S3, Status.OK,
                       f"{files.last_hour} files in the last hour; newest {duration(age)} old", details, facts)


# Full-load file names: "an incremental hexadecimal counter ... LOAD00001.csv, ... LOAD0000A" (DMS user
# guide, CHAP_Target.S3), with the parquet and gzip extensions.
FULL_LOAD_NAME = re.compile(r"(?:^|/)LOAD[0-9A-F]{8}\.(?:csv|parquet)(?:\.gz)?$")


def op_column_differs(target: S3Target | None) -> bool:
    """Whether full-load and CDC files differ by the Op column. botocore's S3Settings: with
    IncludeOpForFullLoad false (the default) full-load files have no Op field, while CDC files start
    with I/U/D, unless CdcInsertsOnly (CDC records then go without it too)."""
    return target is None or not (target.include_op_for_full_load or target.cdc_inserts_only)


def check_snowpipe(pipe: PipeStatus, history: list[LoadRecord], spec: TableSpec,
                   now: datetime | None = None, target: S3Target | None = None) -> CheckResult:
    now = now or utcnow()
    history = latest_attempts(history)  # one row per attempt: a file is failing only if its latest attempt failed
    failed = [r for r in history if r.failed]
    counted = [r for r in failed if COLUMN_MISMATCH in r.first_error_message.lower()]
    loads = [r for r in counted if FULL_LOAD_NAME.search(r.file_name)] if op_column_differs(target) else []
    mismatch = len(counted) > len(loads)
    details = [f"executionState: {pipe.execution_state}", f"pendingFileCount: {pipe.pending_file_count}",
               f"lastIngestedTimestamp: {pipe.last_ingested_at.isoformat() if pipe.last_ingested_at else 'never'}"]
    details += pipe_notes(pipe)
    for record in failed[:_MAX_LISTED]:
        details.append(f"{record.status}: {record.file_name} — {record.first_error_message}")
    if len(failed) > _MAX_LISTED:
        details.append(f"… and {len(failed) - _MAX_LISTED} more failed files")
    if loads:
        setting = ("IncludeOpForFullLoad is false on the target endpoint" if target is not None else
                   "the target endpoint was not read; IncludeOpForFullLoad is false unless set")
        details.append(f"{len(loads)} of the failed files are full-load files (LOAD…) refused on their column "
                       f"count: {setting}, so they have no Op column while CDC files do")
    stale = pipe_stale(pipe, now)
    facts = {"pipe_state": pipe.execution_state, "running": pipe.execution_state == "RUNNING",
             "failed_files": [r.file_name for r in failed], "column_mismatch": mismatch,
             "full_load_mismatch": [r.file_name for r in loads], "op_setting_known": target is not None,
             "type_mismatch": any(m in r.first_error_message.lower() for r in failed for m in TYPE_ERRORS),
             "pending": pipe.pending_file_count, "loaded_recently": any(r.status.lower() == "loaded" for r in history),
             "paused": pipe.execution_state == "PAUSED", "stale": stale,
             "state_meaning": PIPE_STATES.get(pipe.execution_state, "")}
    if pipe.execution_state != "RUNNING":
        summary = f"pipe {spec.pipe} is {pipe.execution_state}"
        if stale:
            summary += (f", with no file loaded for {duration((now - pipe.last_ingested_at).total_seconds())}: "
                        f"stale (paused longer than the {NOTIFICATION_RETENTION.days} days notifications are kept)")
        elif facts["state_meaning"]:
            summary += f": {facts['state_meaning']}"
        return CheckResult(CheckName.SNOWPIPE, Status.FAILING, summary, tuple(details), facts)
    if failed:
        summary = f"{len(failed)} files failed to load in the last 4 hours"
        if mismatch:
            summary += " (column count mismatch)"
        elif loads:
            summary += " (full-load files without the Op column)"
        return CheckResult(CheckName.SNOWPIPE, Status.FAILING, summary, tuple(details), facts)
    if (pipe.error and not error_is_history(pipe)) or pipe.fault:
        what = f"an error: {pipe.error}" if pipe.error and not error_is_history(pipe) else f"a fault: {pipe.fault}"
        return CheckResult(CheckName.SNOWPIPE, Status.WARNING, f"pipe reports {what}", tuple(details), facts)
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


def check_schema(aurora: list[PgColumn], final: dict[str, SfColumn], staging: dict[str, SfColumn],
                 spec: TableSpec) -> CheckResult:
    """Names and types: a column Snowflake lacks is added, one too narrow (length, precision) is
    widened in place, one Snowflake cannot change in place is explained. Final table first, then
    staging (runbook order). A column name that is not a plain identifier is reported, never put in SQL."""
    bad: list[str] = []
    changes: list[tuple[str, str, str, str]] = []
    missing: dict[str, list[str]] = {}
    gaps: dict[str, TypeGap] = {}
    unfixable: list[str] = []
    for table, have in ((spec.final_table, final), (spec.staging_table, staging)):
        for col in aurora:
            name, found = col.name.upper(), have.get(col.name.upper())
            plain = plain_identifier(col.name)
            if found is None and not plain:
                bad.append(col.name)  # Snowflake lacks it, and its name must not be pasted into SQL
            elif found is None:
                changes.append((table, name, "add", snowflake_type(col)))
                missing.setdefault(table, []).append(name)
            elif (gap := type_gap(col, found)) is not None:
                gaps.setdefault(name, gap)
                if gap.target and plain:
                    changes.append((table, name, "type", gap.target))
                else:
                    unfixable.append(f"{table}.{name[:80]}: {gap.why}" if plain else
                                     f"{table}.{name[:80]}: {gap.why}; its name is not a plain identifier, so "
                                     "change it by hand")
    bad = list(dict.fromkeys(bad))
    alters = [column_ddl(*change) + ";" for change in changes]
    facts = {"missing": missing, "alters": alters, "changes": [list(c) for c in changes],
             "widened": sorted(n for n, g in gaps.items() if g.target), "unfixable": unfixable, "bad_names": bad}
    if not (alters or unfixable or bad):
        return CheckResult(CheckName.SCHEMA, Status.OK,
                           f"all {len(aurora)} Aurora columns exist in final and staging tables with room for "
                           "their values", facts=facts)
    said = []
    names = sorted({n for cols in missing.values() for n in cols})
    if names:
        said.append(f"Aurora has {len(names)} column(s) Snowflake lacks: {', '.join(names)}")
    said += [f"column {n} is {g.aurora} in Aurora but {g.snowflake} in Snowflake" for n, g in gaps.items()]
    if bad:
        said.append(f"{len(bad)} Aurora column name(s) are not plain identifiers")
    details = alters + unfixable + [f"Aurora column {b[:80]!r} is not a plain identifier: not put into any "
                                    "statement; rename it in Aurora or map it in the DMS table mapping" for b in bad]
    return CheckResult(CheckName.SCHEMA, Status.FAILING, "; ".join(said), tuple(details), facts)


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




# -- Snowpipe states beyond RUNNING/PAUSED (SYSTEM$PIPE_STATUS executionState, Snowflake's documented list)

NOTIFICATION_RETENTION = timedelta(days=14)  # how long Snowflake keeps a pipe's event notifications
_RECREATE = "recreate the pipe (CREATE OR REPLACE PIPE with its definition), then reload what it missed"
PIPE_STATES = {
    "PAUSED": "paused with ALTER PIPE; resume it",
    "PAUSED_BY_SNOWFLAKE_ADMIN": "paused by Snowflake; open a support case before resuming",
    "PAUSED_BY_ACCOUNT_ADMIN": "paused by an account administrator; ask them before resuming",
    "READ_ONLY": "the pipe or its table is in a read-only secondary database; load in the primary account",
    "FAILING_OVER": "the account is failing over to its secondary; wait for the failover to finish",
    "STOPPED_CLONED": "this pipe is a clone and clones never load; use the original pipe",
    "STOPPED_FEATURE_DISABLED": "Snowpipe is disabled for the account; ask Snowflake support",
    "STOPPED_STAGE_ALTERED": f"its stage's location was changed; {_RECREATE}",
    "STOPPED_STAGE_DROPPED": f"its stage was dropped; recreate the stage, then {_RECREATE}",
    "STOPPED_FILE_FORMAT_DROPPED": f"its file format was dropped; recreate the file format, then {_RECREATE}",
    "STOPPED_NOTIFICATION_INTEGRATION_DROPPED": f"its notification integration was dropped; recreate it, then {_RECREATE}",
    "STOPPED_MISSING_PIPE": f"the pipe was dropped; {_RECREATE}",
    "STOPPED_MISSING_TABLE": "the staging table the pipe loads was dropped; recreate the table, then the pipe",
    "STALLED_COMPILATION_ERROR": "its COPY statement no longer compiles (a column or table changed); fix the "
                                 "table or recreate the pipe",
    "STALLED_INITIALIZATION_ERROR": "it could not start (often a missing privilege or a dropped integration); "
                                    "see the error below",
    "STALLED_EXECUTION_ERROR": "loading fails while running; see the error below and the failed files",
    "STALLED_INTERNAL_ERROR": "an internal Snowflake error; it retries by itself, open a support case if it stays",
    "STALLED_STAGE_PERMISSION_ERROR": "Snowflake cannot read the stage: check the storage integration's IAM role "
                                      "and the bucket policy",
}


def pipe_stale(pipe: PipeStatus, now: datetime) -> bool:
    """SYSTEM$PIPE_STATUS does not say when a pipe was paused; a CDC pipe that loaded nothing for longer
    than the notifications are kept has been paused at least that long."""
    return (pipe.execution_state == "PAUSED" and pipe.last_ingested_at is not None
            and now - pipe.last_ingested_at > NOTIFICATION_RETENTION)


def error_is_history(pipe: PipeStatus) -> bool:
    """SYSTEM$PIPE_STATUS keeps its `error` with lastPipeErrorTimestamp: one older than the last file
    loaded (lastIngestedTimestamp) was followed by a successful ingest, so it is not a current problem
    (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_status)."""
    return (pipe.last_error_at is not None and pipe.last_ingested_at is not None
            and pipe.last_error_at < pipe.last_ingested_at)


def pipe_notes(pipe: PipeStatus) -> list[str]:
    """The `error` and `fault` fields, each with what it means."""
    notes = []
    if pipe.error and error_is_history(pipe):
        notes.append(f"error: {pipe.error} — at {pipe.last_error_at.isoformat()}, before the last file loaded at "  # type: ignore[union-attr]
                     f"{pipe.last_ingested_at.isoformat()}: history, the pipe has loaded since")  # type: ignore[union-attr]
    elif pipe.error:
        notes.append(f"error: {pipe.error} — the last error Snowpipe hit loading for this pipe: fix its cause "
                     "(file format, permissions, the table), then retry the failed files")
    if pipe.fault:
        notes.append(f"fault: {pipe.fault} — a fault inside Snowflake's Snowpipe service, not in your files: "
                     "usually passes by itself; if it stays, open a Snowflake support case naming the pipe")
    return notes


# -- the merge task ------------------------------------------------------------------------------

OVERDUE_INTERVALS = 3  # runs missed before a started task counts as not running
# SHOW TASKS' last_suspended_reason, in words
# (https://docs.snowflake.com/en/release-notes/bcr-bundles/2023_08/bcr-1385-1414).
SUSPENDED_REASONS = {
    "USER_SUSPENDED": "suspended by a user (ALTER TASK … SUSPEND)",
    "SUSPENDED_DUE_TO_ERRORS": "suspended by Snowflake after repeated failed runs (SUSPEND_TASK_AFTER_NUM_FAILURES): "
                               "fix the error before resuming",
    "GRANT_OWNERSHIP": "suspended when its ownership was granted to another role",
    "SCHEMA_OR_DATABASE_DELETED": "its schema or database was dropped",
    "CHILD_BECAME_ROOT": "it was a child task whose predecessors were all removed",
    "FINALIZER_BECAME_ROOT": "it was a finalizer task that became a root task",
    "MATCHING_OWNER_NOT_FOUND": "its owning role was not found when the database was replicated",
}
_DONE = ("SUCCEEDED", "FAILED", "CANCELLED", "SKIPPED", "FAILED_AND_AUTO_SUSPENDED")
_FAILED = ("FAILED", "FAILED_AND_AUTO_SUSPENDED", "CANCELLED")


def schedule_interval(schedule: str, now: datetime) -> timedelta | None:
    """A task's SCHEDULE as a period: '5 MINUTE', '60 M', '1 HOUR', or 'USING CRON <expr> <zone>'."""
    text = schedule.strip().upper()
    match = re.match(r"^(\d+)\s*(SECONDS?|S|MINUTES?|M|HOURS?|H)$", text)
    if match:
        unit = {"S": "seconds", "M": "minutes", "H": "hours"}[match.group(2)[0]]
        return timedelta(**{unit: int(match.group(1))})
    if text.startswith("USING CRON "):
        fields = text.split()[2:7]
        try:
            fires = croniter(" ".join(fields), now)
            first = fires.get_next(datetime)
            return fires.get_next(datetime) - first
        except (ValueError, KeyError):
            return None
    return None


def check_merge_task(state: TaskState | None, runs: list[TaskRun], spec: TableSpec, now: datetime) -> CheckResult:
    task = spec.merge_task
    facts = {"task": task, "suspended": False, "failing": False, "overdue": False, "missing": state is None}
    if state is None:
        return CheckResult(CheckName.MERGE_TASK, Status.FAILING,
                           f"merge task {task} not found (dropped, or this role lacks MONITOR on it)", facts=facts)
    interval = schedule_interval(state.schedule, now) if state.schedule else None
    details = [f"state: {state.state}",
               f"schedule: {state.schedule or 'after ' + (state.predecessors or 'its predecessor')}"]
    if state.child:
        facts.update(root=state.root, root_state=state.root_state)
        details.append(f"in a task graph whose root task {state.root} is {state.root_state or 'unknown'}: a child "
                       "task is resumed only while its root is suspended")
    reason = SUSPENDED_REASONS.get(state.suspended_reason.upper(), state.suspended_reason.lower().replace("_", " "))
    if state.state == "suspended" and state.suspended_reason:
        facts["suspended_reason"] = state.suspended_reason.upper()
        details.append(f"last_suspended_reason: {state.suspended_reason} — {reason}")
    details += [f"{r.state} run scheduled {_ago(r.scheduled_at, now)}"
                + (f": {r.error_code} {r.error_message}".rstrip() if r.state in _FAILED else "") for r in runs]
    done = [r for r in runs if r.state in _DONE]
    failures = list(itertools.takewhile(lambda r: r.state in _FAILED, done))
    last = max((r.scheduled_at for r in runs if r.scheduled_at), default=None)
    if state.state == "suspended":
        facts["suspended"] = True
        why = f" after failing: {failures[0].error_code} {failures[0].error_message}" if failures else ""
        why = f" ({reason})" + why if state.suspended_reason else why
        return CheckResult(CheckName.MERGE_TASK, Status.FAILING, f"merge task {task} is suspended{why}",
                           tuple(details), facts)
    if failures:
        facts.update(failing=True, error=f"{failures[0].error_code} {failures[0].error_message}".strip())
        return CheckResult(CheckName.MERGE_TASK, Status.FAILING,
                           f"merge task {task}: the last {len(failures)} run(s) failed: {facts['error']}",
                           tuple(details), facts)
    window = timedelta(hours=TASK_HISTORY_HOURS)
    if interval and ((last is None and OVERDUE_INTERVALS * interval <= window)
                     or (last is not None and now - last > OVERDUE_INTERVALS * interval)):
        facts["overdue"] = True
        since = f"for {duration((now - last).total_seconds())}" if last else f"in {TASK_HISTORY_HOURS} hours"
        return CheckResult(CheckName.MERGE_TASK, Status.FAILING,
                           f"merge task {task} is started but has not run {since} (scheduled every "
                           f"{duration(interval.total_seconds())})", tuple(details), facts)
    newest = f"; last run {done[0].state} {_ago(done[0].scheduled_at, now)}" if done else ""
    return CheckResult(CheckName.MERGE_TASK, Status.OK, f"merge task {task} is started{newest}", tuple(details), facts)


def _ago(moment: datetime | None, now: datetime) -> str:
    return f"{duration((now - moment).total_seconds())} ago" if moment else "at an unknown time"


# -- rows: data missing, not only late -------------------------------------------------------------

MIN_GAP_ROWS = 1_000  # the floor a gap must pass, for tables of 10,000 rows and more
SMALL_TABLE_SHARE = 0.10  # below 10,000 rows the floor is this share of the table: 10 of 100, 100 of 1,000
EXACT_SHARE = 0.01  # exact counts: the two counts are read moments apart
ESTIMATE_SHARE = 0.10  # the planner's estimate is refreshed by ANALYZE after ~10 % of rows changed
MERGE_SLACK_S = 600  # a file in flight plus a merge interval, on top of the measured lag
MIN_RATE_WINDOW_S = 900


def check_rows(aurora: RowCount | None, final_rows: int, newest: datetime | None, task: TaskInfo | None,
               stat: TableStat | None, spec: TableSpec, now: datetime) -> CheckResult:
    """Aurora's count against the final table's. A gap is "Data Missing" only when it is larger than
    the rows Aurora gains while the sync lags (its CDC insert rate times the final table's age plus
    a merge's slack) plus what the counts' own precision allows."""
    if aurora is None or aurora.rows is None:
        return CheckResult(CheckName.ROWS, Status.WARNING, f"Aurora gives no row count for {spec.source} "
                           "(never analysed?)", facts={"missing_rows": False})
    how = "exact" if aurora.exact else "estimate"
    lag_s = (now - newest).total_seconds() if newest else 0.0
    rate = _insert_rate(task, stat)
    explained = int(rate * (max(lag_s, 0.0) + MERGE_SLACK_S))
    floor = min_gap(aurora.rows)
    allowed = max(floor, int(aurora.rows * (EXACT_SHARE if aurora.exact else ESTIMATE_SHARE))) + explained
    gap = aurora.rows - final_rows
    details = (f"Aurora {spec.source}: {aurora.rows:,} rows ({how})", f"Snowflake {spec.final_table}: {final_rows:,} rows",
               f"allowed gap {allowed:,} rows: {'1 %' if aurora.exact else '10 %'} of Aurora's count (at least "
               f"{floor:,}) + {explained:,} rows inserted while the final table lags "
               f"({rate:.1f}/s × {duration(max(lag_s, 0.0) + MERGE_SLACK_S)})")
    facts = {"aurora_rows": aurora.rows, "final_rows": final_rows, "gap": gap, "allowed": allowed,
             "missing_rows": gap > allowed, "exact": aurora.exact}
    if gap > allowed:
        return CheckResult(CheckName.ROWS, Status.FAILING,
                           f"{gap:,} rows missing: Aurora has {aurora.rows:,} ({how}), {spec.final_table} has "
                           f"{final_rows:,}; the lag explains at most {allowed:,}", details, facts)
    return CheckResult(CheckName.ROWS, Status.OK,
                       f"Aurora {aurora.rows:,} rows ({how}), {spec.final_table} {final_rows:,}: the gap is within "
                       f"the {allowed:,} that the lag and the counts' precision allow", details, facts)


def min_gap(rows: int) -> int:
    """The noise floor: 1,000 rows, or 10 % of a smaller table (a 1,000-row table missing 400 is not noise)."""
    return min(MIN_GAP_ROWS, max(1, int(rows * SMALL_TABLE_SHARE)))


def _insert_rate(task: TaskInfo | None, stat: TableStat | None) -> float:
    """Rows a second the table gains from CDC: its inserts over the task's running time (DMS counts both
    since the task started)."""
    elapsed_ms = float((task.stats if task else {}).get("ElapsedTimeMillis") or 0)
    if stat is None or elapsed_ms < MIN_RATE_WINDOW_S * 1000:  # just restarted: too short to measure
        return 0.0
    return max(stat.inserts - stat.deletes, 0) / (elapsed_ms / 1000)
