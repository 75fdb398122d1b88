"""Re-sync table (runbook "Re-syncing a Table"): staging and final table are truncated, DMS reloads
the one table from Aurora, and the worker follows the reload, Snowpipe and the merge until the final
table holds about as many rows as Aurora. Deletes data: two people, a danger-styled button, and its
own queue, since it follows DMS for hours."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ...diagnostics.layout import locate
from ...gateways import GatewayError, NotFound
from ...gateways.dms import TABLE_STATES_BAD, TABLE_STATES_LOADING, TableStat
from ...gateways.snowflake import PIPE_LOADS_DAYS, copy_with_files
from ...models import ActionKind
from ...diagnostics.verdict import resync_refusal
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext, StepFailed

QUEUE = "syncbot-resync"  # hours: a worker on the quick fixes' queue is never stuck behind one
ENOUGH_ROWS = 0.9  # after a re-sync, fewer rows than this share of Aurora's count is a failed re-sync
TRUNCATE_ATTEMPTS = 5  # a TRUNCATE cut off by its statement timeout (a lock held by the merge) is retried
RELOAD_GRACE_S = 120  # how long a resumed reload waits for DMS to show an earlier call before calling again


@dataclass(frozen=True)
class ResyncPlan(PlanData):
    """Everything the worker touches is fixed here and bound by the approval: an edited catalog cannot
    make an approved re-sync truncate other tables."""

    task_arn: str
    source_schema: str
    source_table: str
    staging_table: str
    final_table: str
    pipe: str
    # The pipe's COPY statement (DESCRIBE PIPE when requested) and where DMS writes the table's full-load
    # files: the reloaded files Snowpipe skips are loaded with it. "" when the definition could not be read.
    definition: str = ""
    bucket: str = ""
    table_prefix: str = ""

    @property
    def source(self) -> str:
        return f"{self.source_schema}.{self.source_table}"


def prepare(s: Situation) -> tuple[ResyncPlan, tuple[str, ...]]:
    spec, sf = s.spec, s.gw.snowflake
    task = s.gw.dms.task(spec.dms_task)
    if not task.reloads_tables:  # DMS refuses ReloadTables on a CDC-only task: nothing is asked of anyone
        raise PlanError(resync_refusal(task.migration_type or "unknown"))
    if task.status != "running":
        raise PlanError(f"DMS ReloadTables needs the task running, and {task.identifier} is {task.status}: "
                        "restart the task first.")
    staging_rows, final_rows = sf.row_count(spec.staging_table), sf.row_count(spec.final_table)
    estimate = s.gw.aurora.row_estimate(spec.source_schema, spec.source_table)
    facts = (f"{spec.staging_table}: {staging_rows:,} rows now (deleted)",
             f"{spec.final_table}: {final_rows:,} rows now (deleted, then reloaded)",
             f"Aurora {spec.source}: ≈{estimate:,} rows to reload" if estimate is not None
             else f"Aurora {spec.source}: row estimate unavailable",
             f"DMS task {task.identifier} is {task.status}; only this table is reloaded")
    definition, bucket, prefix, note = _full_load_copy(s, task.target_endpoint_arn)
    return ResyncPlan(task.arn, spec.source_schema, spec.source_table, spec.staging_table, spec.final_table,
                      spec.pipe, definition, bucket, prefix), facts + (note,)


def _full_load_copy(s: Situation, target_arn: str) -> tuple[str, str, str, str]:
    """What the step that loads the reloaded files needs: the pipe's COPY statement and the folder DMS
    writes LOAD… files to. Either missing leaves that step out, and the approvers are told."""
    try:
        target: object = s.gw.dms.target(target_arn)
    except GatewayError as exc:
        target = exc
    layout = locate(s.spec, target).layout  # type: ignore[arg-type]
    try:
        definition = s.gw.snowflake.definition("PIPE", s.spec.pipe)
    except GatewayError as exc:
        return "", "", "", (f"the pipe's COPY statement could not be read ({exc}): reloaded files whose names "
                            "Snowpipe loaded before will not load; load them by hand")
    if layout is None:
        return "", "", "", ("where DMS writes the full-load files is unknown (no bucket): reloaded files whose "
                            "names Snowpipe loaded before will not load; load them by hand")
    return definition, layout.bucket, layout.table_prefix, (
        f"DMS rewrites the full-load files under s3://{layout.bucket}/{layout.table_prefix} with the same names "
        f"(LOAD00000001…); Snowpipe skips a name it loaded in the last {PIPE_LOADS_DAYS} days, so those are "
        "loaded with the pipe's own COPY (TRUNCATE cleared the table's load metadata)")


def steps(plan: ResyncPlan) -> tuple[Step, ...]:
    return (Step("check DMS can reload the table", lambda ctx: _can_reload(ctx, plan), changes=False,
                 shown="check the DMS task is running and of MigrationType full-load or full-load-and-cdc, "
                       "before anything is truncated"),
            Step(f"TRUNCATE TABLE {plan.staging_table}", _truncate(plan.staging_table),
                 shown=f"TRUNCATE TABLE {plan.staging_table}"),
            Step(f"TRUNCATE TABLE {plan.final_table}", _truncate(plan.final_table),
                 shown=f"TRUNCATE TABLE {plan.final_table}"),
            Step("DMS ReloadTables", lambda ctx: _reload(ctx, plan),
                 shown=f"AWS DMS ReloadTables(ReplicationTaskArn={plan.task_arn}, TablesToReload=[{{SchemaName: "
                       f"{plan.source_schema}, TableName: {plan.source_table}}}], ReloadOption=data-reload)"),
            Step("follow the DMS reload", lambda ctx: _follow_dms(ctx, plan), changes=False,
                 shown="follow DescribeTableStatistics until the reload has started and finished"),
            *_copy_step(plan),
            Step("follow Snowpipe and the merge", lambda ctx: _follow_snowflake(ctx, plan), changes=False,
                 shown="follow Snowpipe and the merge until the final table holds Aurora's rows (fewer than "
                       f"{ENOUGH_ROWS:.0%} is a failed re-sync), then diagnose again"))


def _copy_step(plan: ResyncPlan) -> tuple[Step, ...]:
    if not plan.definition:
        return ()
    statement = copy_with_files(plan.definition, 1).replace("(%s)", "(<the reloaded LOAD… files Snowpipe skips>)")
    return (Step("COPY the reloaded full-load files Snowpipe skips", lambda ctx: _copy_reloaded(ctx, plan),
                 shown=f"{statement.replace('%%', '%')}: the files DMS rewrote whose names the pipe loaded in the "
                       f"last {PIPE_LOADS_DAYS} days (the others Snowpipe loads itself)"),)


def _copy_reloaded(ctx: StepContext, plan: ResyncPlan) -> str:
    """DMS rewrote LOAD00000001.csv… under the names they had. Snowpipe's load metadata (per pipe, 14 days)
    skips a name it already loaded, even with new contents, and TRUNCATE does not clear it; TRUNCATE does
    clear the table's own load metadata, which bulk COPY reads
    (https://docs.snowflake.com/en/sql-reference/sql/truncate-table;
    https://docs.snowflake.com/en/user-guide/data-load-snowpipe-intro, "Load history"). So the rewritten
    files the pipe knows are loaded with its COPY, without FORCE: a repeat after a crash finds them in the
    table's load metadata and loads nothing twice. Names new to the pipe are left to Snowpipe, which
    loads them itself: both would load them twice."""
    stat = _stat(ctx, plan)
    since = stat.full_load_start if stat else None
    if since is None:
        raise StepFailed("DMS does not say when the reload started: cannot tell which full-load files it rewrote")
    try:
        written = ctx.gw.s3.full_load_files(plan.bucket, plan.table_prefix, since)
        attempts = ctx.gw.snowflake.pipe_loads(plan.staging_table, plan.pipe)
    except GatewayError as exc:
        raise StepFailed(f"cannot tell which reloaded files Snowpipe skips: {exc}") from None
    # Names the pipe tried before this reload (a failed attempt counts: Snowpipe does not retry a name).
    known = {r.file_name.rsplit("/", 1)[-1]: r.file_name for r in attempts
             if r.last_load_time is not None and r.last_load_time < since}
    skipped = sorted(known[name] for name in written if name in known)
    new = len(written) - len(skipped)
    if skipped:
        ctx.gw.snowflake.load_files(plan.definition, skipped)
    return (f"COPY INTO {plan.staging_table}: {len(skipped)} rewritten full-load files Snowpipe skips"
            + (f" ({', '.join(n.rsplit('/', 1)[-1] for n in skipped[:5])}{' …' if len(skipped) > 5 else ''})"
               if skipped else "") + f"; {new} with new names left to Snowpipe")


def _can_reload(ctx: StepContext, plan: ResyncPlan) -> str:
    """Checked again by the worker before the first TRUNCATE: the task may have been changed to CDC-only,
    or stopped, since the approval, and then ReloadTables would be refused after the tables were
    emptied (DMS user guide, "Reloading tables during a task")."""
    try:
        task = ctx.gw.dms.task_by_arn(plan.task_arn)
    except NotFound:
        raise StepFailed("nothing was truncated: the DMS task is gone") from None
    if not task.reloads_tables:
        raise StepFailed(f"nothing was truncated: {resync_refusal(task.migration_type or 'unknown')}")
    if task.status != "running":
        raise StepFailed(f"nothing was truncated: DMS ReloadTables needs the task running, and it is {task.status}")
    return f"checked: DMS task {task.identifier} runs and reloads tables (MigrationType {task.migration_type})"


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


def _stat(ctx: StepContext, plan: ResyncPlan) -> TableStat | None:
    return ctx.gw.dms.table_statistics(plan.task_arn).get((plan.source_schema.lower(), plan.source_table.lower()))


def _reload_started(stat: TableStat | None, before: str) -> bool:
    """Did a reload start after the one recorded before our call? DMS's own times are compared with
    each other (never with our clock), so a skewed clock cannot fool it."""
    if stat is None:
        return False
    if stat.state.lower() in TABLE_STATES_LOADING:
        return True
    start = stat.full_load_start.isoformat() if stat.full_load_start else ""
    return bool(start) and start != before


def _reload(ctx: StepContext, plan: ResyncPlan) -> str:
    if ctx.resumed:
        fresh = ctx.rt.approvals.get(ctx.lease.request.id)  # the intent is written after the claim
        before = fresh.extra.get("reload_before", "") if fresh else ""
        if fresh and "reload_intent_at" in fresh.extra:
            # The call may have gone through before the worker died; DMS may take a moment to show it.
            deadline = time.monotonic() + RELOAD_GRACE_S
            while not _reload_started(stat := _stat(ctx, plan), before):
                if time.monotonic() > deadline:
                    break
                ctx.live("waiting for DMS to show whether the reload was accepted before the restart")
                ctx.wait(min(ctx.rt.poll_s, 10))
            else:
                return f"DMS ReloadTables: already accepted before the restart (table: {stat.state})"
    stat = _stat(ctx, plan)
    before = stat.full_load_start.isoformat() if stat and stat.full_load_start else ""
    ctx.lease.fence("DMS ReloadTables: calling", changes=True, reload_before=before,
                    reload_intent_at=repr(ctx.started_at))
    ctx.gw.dms.reload_table(plan.task_arn, plan.source_schema, plan.source_table)
    return f"DMS ReloadTables data-reload for {plan.source}: accepted"


def _follow_dms(ctx: StepContext, plan: ResyncPlan) -> str:
    request = ctx.rt.approvals.get(ctx.lease.request.id)
    before = request.extra.get("reload_before", "") if request else ""
    deadline = time.monotonic() + ctx.rt.follow_timeout_s
    while True:
        stat = _stat(ctx, plan)
        state = stat.state if stat else "not in the task statistics"
        rows = stat.full_load_rows if stat else 0
        started = _reload_started(stat, before)
        if started and state.lower() == "table completed":
            return f"DMS reloaded {rows:,} rows"
        if state.lower() in TABLE_STATES_BAD:
            raise StepFailed(f"DMS reports '{state}' for {plan.source}")
        if time.monotonic() > deadline:
            raise StepFailed(f"DMS still loading after {ctx.rt.follow_timeout_s / 3600:.1f} h ({state})")
        ctx.live(f"DMS: {state}, {rows:,} rows loaded" if started else "DMS: waiting for the reload to start")
        ctx.wait(ctx.rt.poll_s)


def _follow_snowflake(ctx: StepContext, plan: ResyncPlan) -> str:
    """Snowpipe loads the reloaded files, the merge task moves them to the final table; then the
    final table must hold about as many rows as Aurora, or the re-sync failed."""
    sf, table = ctx.gw.snowflake, plan.final_table
    deadline = time.monotonic() + ctx.rt.catchup_timeout_s
    while True:
        pending = _pending(ctx, plan)
        final = sf.row_count(table)
        aurora = ctx.gw.aurora.row_count(plan.source_schema, plan.source_table)
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


def _pending(ctx: StepContext, plan: ResyncPlan) -> int:
    try:
        return ctx.gw.snowflake.pipe_status(plan.pipe).pending_file_count
    except GatewayError:
        return 0  # the row counts decide; a pipe status we cannot read does not hold the re-sync


FIX = Fix(ActionKind.RESYNC, "Re-sync table", ResyncPlan, prepare, steps, people=2, destructive=True, queue=QUEUE,
          everywhere=True, diagnose_after=True,
          confirm="This asks a second approver to truncate and reload {table}.")
