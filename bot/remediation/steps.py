"""Each fix as the steps the worker runs: what the runbook says a person would do, and nothing more.

A step makes at most one change, so a checkpoint after it means "this change happened". A step
that is resumed (a worker died inside it) first asks the system whether its change already
happened. Steps read only the approved plan's data, never the catalog."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from ..gateways import GatewayError, Gateways
from ..gateways.dms import TABLE_STATES_BAD, TABLE_STATES_LOADING, TableStat
from ..gateways.snowflake import column_ddl
from ..models import ActionKind

if TYPE_CHECKING:
    from .runtime import Lease, Runtime

ENOUGH_ROWS = 0.9  # after a re-sync, fewer rows than this share of Aurora's count is a failed re-sync
TRUNCATE_ATTEMPTS = 5  # a TRUNCATE cut off by its statement timeout (a lock held by the merge) is retried
RELOAD_GRACE_S = 120  # how long a resumed reload waits for DMS to show an earlier call before calling again


class StepFailed(Exception):
    """The step could not do its work; the message says why, in words for people."""


@dataclass
class StepContext:
    gw: Gateways
    lease: "Lease"
    data: dict[str, Any]  # the approved plan's data
    resumed: bool  # a worker died inside this step: its change may have happened
    started_at: float  # the Redis server's time when this step passed its fence
    rt: "Runtime"

    def live(self, text: str) -> None:
        """A progress line drawn into the request's message; also renews the lease."""
        self.lease.fence(live=text)
        self.rt.reporter.request_changed(self.rt.approvals.get(self.lease.request.id))

    def wait(self, seconds: float) -> None:
        self.rt.sleep(seconds)


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[[StepContext], str]
    changes: bool = True  # a side effect: fenced right before it, never repeated once checkpointed


def steps_for(kind: ActionKind, data: dict[str, Any]) -> tuple[Step, ...]:
    return _STEPS[kind](data)


# -- quick fixes -------------------------------------------------------------------------------------

def _restart(data: dict[str, Any]) -> tuple[Step, ...]:
    start = Step("start the task", _start_task)
    if not data["stop_first"]:
        return (start,)
    return (Step("stop the task", _stop_task), Step("wait until stopped", _wait_stopped, changes=False), start)


def _stop_task(ctx: StepContext) -> str:
    if ctx.resumed and (status := ctx.gw.dms.task(ctx.data["task"]).status) in ("stopping", "stopped", "failed"):
        return f"the task was already {status}"
    return f"StopReplicationTask accepted; the task is {ctx.gw.dms.stop_task(ctx.data['task_arn'])}"


def _wait_stopped(ctx: StepContext) -> str:
    deadline = time.monotonic() + ctx.rt.stop_wait_s
    while (status := ctx.gw.dms.task(ctx.data["task"]).status) not in ("stopped", "failed"):
        if time.monotonic() > deadline:
            raise StepFailed(f"the task did not stop within {ctx.rt.stop_wait_s:.0f}s (it is {status})")
        ctx.live(f"DMS task {status}")
        ctx.wait(min(ctx.rt.poll_s, 5))
    return f"the task is {status}"


def _start_task(ctx: StepContext) -> str:
    if ctx.resumed and (status := ctx.gw.dms.task(ctx.data["task"]).status) in ("starting", "running"):
        return f"the task was already {status}"
    status = ctx.gw.dms.start_task(ctx.data["task_arn"], "resume-processing")
    return f"StartReplicationTask resume-processing accepted; the task is {status}"


def _pipe(data: dict[str, Any]) -> tuple[Step, ...]:
    def alter(ctx: StepContext) -> str:
        if data.get("force"):  # a stale pipe: ALTER PIPE … RESUME is refused; forcing twice is harmless
            ctx.gw.snowflake.force_resume_pipe(data["pipe"])
        else:
            ctx.gw.snowflake.set_pipe_paused(data["pipe"], data["paused"])  # the same ALTER twice is harmless
        return f"pipe {data['pipe']} is now {ctx.gw.snowflake.pipe_status(data['pipe']).execution_state}"
    verb = "SYSTEM$PIPE_FORCE_RESUME" if data.get("force") else "ALTER PIPE"
    return (Step(f"{verb} {data['pipe']}", alter),)


def _fix_columns(data: dict[str, Any]) -> tuple[Step, ...]:
    """Every statement is checked in the first step, before the first ALTER runs: a refused name
    never leaves the tables half changed. Then one ALTER a step."""
    changes = [tuple(change) for change in data["changes"]]
    steps = [Step(f"{'add' if op == 'add' else 'widen'} {column[:40]} in {table}", _change_column(change))
             for change in changes for table, column, op, _ in (change,)]
    return (Step("check every statement", _check_statements, changes=False), *steps,
            Step("check the merge task", _check_merge, changes=False))


def _check_statements(ctx: StepContext) -> str:
    try:
        statements = [column_ddl(*change) for change in ctx.data["changes"]]
    except GatewayError as exc:
        raise StepFailed(f"nothing was changed: {exc}") from None
    return f"{len(statements)} statements checked"


def _change_column(change: tuple) -> Callable[[StepContext], str]:
    table, column, op, sf_type = change

    def run(ctx: StepContext) -> str:
        if ctx.resumed and op == "add" and column.upper() in ctx.gw.snowflake.column_types(table):
            return f"{column} was already in {table}"
        # SET DATA TYPE to the type a column already has changes nothing, so a repeat is harmless.
        [sql] = ctx.gw.snowflake.change_columns([change])
        return sql
    return run


def _resume_task(data: dict[str, Any]) -> tuple[Step, ...]:
    def resume(ctx: StepContext) -> str:
        ctx.gw.snowflake.resume_task(data["merge_task"])  # resuming a started task is harmless
        return f"resumed merge task {data['merge_task']}"
    return (Step(f"ALTER TASK {data['merge_task']} RESUME", resume),)


def _check_merge(ctx: StepContext) -> str:
    task = ctx.data["merge_task"]
    added = ctx.data.get("added", [])
    if not added:
        return "no new columns: the merge task needs no change"
    try:
        definition = ctx.gw.snowflake.definition("TASK", task).upper()
    except GatewayError as exc:
        return f"warning: could not read the merge task {task}: {exc}"
    absent = [c for c in added if c not in definition]
    if absent:
        return (f"warning: the merge task {task} does not mention {', '.join(absent)}: update its logic "
                "(runbook Schema Mismatch step 4)")
    return f"the merge task {task} already mentions the new columns"


def _retry(data: dict[str, Any]) -> tuple[Step, ...]:
    def load(ctx: StepContext) -> str:
        # COPY skips files already in the load history, so a repeat after a crash loads nothing twice.
        ctx.gw.snowflake.load_files(data["definition"], data["files"])
        return f"reloaded {len(data['files'])} files with the pipe's COPY statement"
    return (Step("COPY INTO … FILES", load),)


# -- the re-sync (runbook "Re-syncing a Table") ---------------------------------------------------------

def _resync(data: dict[str, Any]) -> tuple[Step, ...]:
    return (Step(f"TRUNCATE TABLE {data['staging_table']}", _truncate(data["staging_table"])),
            Step(f"TRUNCATE TABLE {data['final_table']}", _truncate(data["final_table"])),
            Step("DMS ReloadTables", _reload),
            Step("follow the DMS reload", _follow_dms, changes=False),
            Step("follow Snowpipe and the merge", _follow_snowflake, changes=False))


def _truncate(table: str) -> Callable[[StepContext], str]:
    def run(ctx: StepContext) -> str:
        for attempt in range(1, TRUNCATE_ATTEMPTS + 1):
            if attempt > 1:
                ctx.lease.fence(f"TRUNCATE TABLE {table}: attempt {attempt}", changes=True)
            try:
                ctx.gw.snowflake.truncate(table, timeout_s=ctx.rt.statement_timeout_s)
                return f"TRUNCATE TABLE {table}: done"
            except GatewayError as exc:
                if "timeout" not in str(exc).lower() or attempt == TRUNCATE_ATTEMPTS:
                    raise StepFailed(f"TRUNCATE TABLE {table}: {exc}") from None
                ctx.live(f"TRUNCATE TABLE {table} timed out after {ctx.rt.statement_timeout_s}s "
                         f"(a lock held by the merge?); retrying ({attempt} of {TRUNCATE_ATTEMPTS})")
        raise AssertionError("unreachable")
    return run


def _stat(ctx: StepContext) -> TableStat | None:
    return ctx.gw.dms.table_statistics(ctx.data["task_arn"]).get(
        (ctx.data["source_schema"].lower(), ctx.data["source_table"].lower()))


def _reload_started(stat: TableStat | None, before: str) -> bool:
    """Did a reload start after the one recorded before our call? DMS's own times are compared with
    each other (never with our clock), so a skewed clock cannot fool it."""
    if stat is None:
        return False
    if stat.state.lower() in TABLE_STATES_LOADING:
        return True
    start = stat.full_load_start.isoformat() if stat.full_load_start else ""
    return bool(start) and start != before


def _reload(ctx: StepContext) -> str:
    source = f"{ctx.data['source_schema']}.{ctx.data['source_table']}"
    if ctx.resumed:
        fresh = ctx.rt.approvals.get(ctx.lease.request.id)  # the intent is written after the claim
        before = fresh.extra.get("reload_before", "") if fresh else ""
        if fresh and "reload_intent_at" in fresh.extra:
            # The call may have gone through before the worker died; DMS may take a moment to show it.
            deadline = time.monotonic() + RELOAD_GRACE_S
            while not _reload_started(stat := _stat(ctx), before):
                if time.monotonic() > deadline:
                    break
                ctx.live("waiting for DMS to show whether the reload was accepted before the restart")
                ctx.wait(min(ctx.rt.poll_s, 10))
            else:
                return f"DMS ReloadTables: already accepted before the restart (table: {stat.state})"
    stat = _stat(ctx)
    before = stat.full_load_start.isoformat() if stat and stat.full_load_start else ""
    ctx.lease.fence("DMS ReloadTables: calling", changes=True, reload_before=before,
                    reload_intent_at=repr(ctx.started_at))
    ctx.gw.dms.reload_table(ctx.data["task_arn"], ctx.data["source_schema"], ctx.data["source_table"])
    return f"DMS ReloadTables data-reload for {source}: accepted"


def _follow_dms(ctx: StepContext) -> str:
    request = ctx.rt.approvals.get(ctx.lease.request.id)
    before = request.extra.get("reload_before", "") if request else ""
    deadline = time.monotonic() + ctx.rt.follow_timeout_s
    while True:
        stat = _stat(ctx)
        state = stat.state if stat else "not in the task statistics"
        rows = stat.full_load_rows if stat else 0
        started = _reload_started(stat, before)
        if started and state.lower() == "table completed":
            return f"DMS reloaded {rows:,} rows"
        if state.lower() in TABLE_STATES_BAD:
            raise StepFailed(f"DMS reports '{state}' for {ctx.data['source_schema']}.{ctx.data['source_table']}")
        if time.monotonic() > deadline:
            raise StepFailed(f"DMS still loading after {ctx.rt.follow_timeout_s / 3600:.1f} h ({state})")
        ctx.live(f"DMS: {state}, {rows:,} rows loaded" if started else "DMS: waiting for the reload to start")
        ctx.wait(ctx.rt.poll_s)


def _follow_snowflake(ctx: StepContext) -> str:
    """Snowpipe loads the reloaded files, the merge task moves them to the final table; then the
    final table must hold about as many rows as Aurora, or the re-sync failed."""
    sf, table = ctx.gw.snowflake, ctx.data["final_table"]
    deadline = time.monotonic() + ctx.rt.catchup_timeout_s
    while True:
        pending = _pending(ctx)
        final = sf.row_count(table)
        aurora = ctx.gw.aurora.row_count(ctx.data["source_schema"], ctx.data["source_table"])
        numbers = f"Aurora {aurora:,} rows, {table} {final:,}" if aurora is not None else f"{table} {final:,} rows"
        if aurora is None and not pending:
            return f"{numbers} (Aurora's count unavailable: compare by hand)"
        if aurora is not None and final >= ENOUGH_ROWS * aurora and not pending:
            return f"rows now: {numbers}"
        if time.monotonic() > deadline:
            raise StepFailed(f"after {ctx.rt.catchup_timeout_s / 60:.0f} min the final table is short: {numbers}"
                             + (f", {pending} files still pending in Snowpipe" if pending else ""))
        ctx.live(f"waiting for Snowpipe and the merge: {numbers}" + (f", {pending} files pending" if pending else ""))
        ctx.wait(ctx.rt.poll_s)


def _pending(ctx: StepContext) -> int:
    try:
        return ctx.gw.snowflake.pipe_status(ctx.data["pipe"]).pending_file_count
    except GatewayError:
        return 0  # the row counts decide; a pipe status we cannot read does not hold the re-sync


_STEPS: dict[ActionKind, Callable[[dict[str, Any]], tuple[Step, ...]]] = {
    ActionKind.RESTART_TASK: _restart,
    ActionKind.PAUSE_PIPE: _pipe,
    ActionKind.RESUME_PIPE: _pipe,
    ActionKind.FIX_COLUMNS: _fix_columns,
    ActionKind.RESUME_TASK: _resume_task,
    ActionKind.RETRY_FILES: _retry,
    ActionKind.RESYNC: _resync,
}
