"""Re-sync table (runbook "Re-syncing a Table"): staging and final table are truncated, DMS reloads
the one table from Aurora, and the worker follows the reload, Snowpipe and the merge until the final
table holds about as many rows as Aurora. Deletes data: two people, a danger-styled button, and its
own queue, since it follows DMS for hours."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ...gateways import GatewayError
from ...gateways.dms import TABLE_STATES_BAD, TABLE_STATES_LOADING, TableStat
from ...models import ActionKind
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

    @property
    def source(self) -> str:
        return f"{self.source_schema}.{self.source_table}"


def prepare(s: Situation) -> tuple[ResyncPlan, tuple[str, ...]]:
    spec, sf = s.spec, s.gw.snowflake
    task = s.gw.dms.task(spec.dms_task)
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
    return ResyncPlan(task.arn, spec.source_schema, spec.source_table, spec.staging_table, spec.final_table,
                      spec.pipe), facts


def steps(plan: ResyncPlan) -> tuple[Step, ...]:
    return (Step(f"TRUNCATE TABLE {plan.staging_table}", _truncate(plan.staging_table),
                 shown=f"TRUNCATE TABLE {plan.staging_table}"),
            Step(f"TRUNCATE TABLE {plan.final_table}", _truncate(plan.final_table),
                 shown=f"TRUNCATE TABLE {plan.final_table}"),
            Step("DMS ReloadTables", lambda ctx: _reload(ctx, plan),
                 shown=f"AWS DMS ReloadTables(ReplicationTaskArn={plan.task_arn}, TablesToReload=[{{SchemaName: "
                       f"{plan.source_schema}, TableName: {plan.source_table}}}], ReloadOption=data-reload)"),
            Step("follow the DMS reload", lambda ctx: _follow_dms(ctx, plan), changes=False,
                 shown="follow DescribeTableStatistics until the reload has started and finished"),
            Step("follow Snowpipe and the merge", lambda ctx: _follow_snowflake(ctx, plan), changes=False,
                 shown="follow Snowpipe and the merge until the final table holds Aurora's rows (fewer than "
                       f"{ENOUGH_ROWS:.0%} is a failed re-sync), then diagnose again"))


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
