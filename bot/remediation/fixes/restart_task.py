"""Restart DMS task (runbook "DMS Task Stalled"): a running but stalled task is stopped first; then
it is started with resume-processing, so it carries on from its checkpoint. A task that never ran
starts with start-replication: botocore's StartReplicationTaskType says it "is the only valid action
that can be used for the first time a task ... is run", and resume-processing then "will result in data
errors". A task whose replication slot lost its WAL cannot resume at all (resume-processing fails
again): that is refused before approval and checked again by the worker before it starts the task."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext, StepFailed
from .task_slot import lost_slot


@dataclass(frozen=True)
class RestartPlan(PlanData):
    task: str  # the task's identifier
    task_arn: str
    stop_first: bool  # the task was running (stalled): stop it before starting it
    start_type: str = "resume-processing"  # start-replication for a task that never ran


def prepare(s: Situation) -> tuple[RestartPlan, tuple[str, ...]]:
    task = s.gw.dms.task(s.spec.dms_task)
    if task.status not in ("running", "stopped", "failed", "ready"):
        raise PlanError(f"The DMS task is {task.status}; it can be restarted once it is stopped or failed.")
    sharing = sorted(t.name for t in s.tables if t.dms_task == s.spec.dms_task)
    facts = (f"task {task.identifier} is {task.status}" + (f" ({task.stop_reason})" if task.stop_reason else ""),
             f"the task replicates {len(sharing)} catalog tables: {', '.join(sharing)}")
    if task.never_ran:
        return RestartPlan(task.identifier, task.arn, False, "start-replication"), facts + (
            "the task has never run: its first start is start-replication (a full load, then CDC)",)
    lost, said = lost_slot(s.gw, task)
    if lost:
        raise PlanError(f"The task cannot resume: its replication slot {lost} lost WAL DMS had not read (wal_status "
                        "lost), so resume-processing would fail again. Reload the target (every table of the task, "
                        "two people) or re-sync the tables instead.")
    return RestartPlan(task.identifier, task.arn, task.status == "running"), facts + (said,)


def steps(plan: RestartPlan) -> tuple[Step, ...]:
    start = Step("start the task", lambda ctx: _start(ctx, plan),
                 shown=f"AWS DMS StartReplicationTask(ReplicationTaskArn={plan.task_arn}, "
                       f"StartReplicationTaskType={plan.start_type})")
    return stopped_first(plan, start, "  — running but stalled")


def stopped_first(plan: RestartPlan | Any, start: Step, why: str = "") -> tuple[Step, ...]:
    """`start`, after stopping the task when the plan says it runs (any plan with `task`, `task_arn`
    and `stop_first`: reload-target starts the same way)."""
    if not plan.stop_first:
        return (start,)
    return (Step("stop the task", lambda ctx: stop_task(ctx, plan),
                 shown=f"AWS DMS StopReplicationTask(ReplicationTaskArn={plan.task_arn}){why}"),
            Step("wait until stopped", lambda ctx: wait_stopped(ctx, plan), changes=False,
                 shown="wait until the task reports stopped"),
            start)


def stop_task(ctx: StepContext, plan: RestartPlan | Any) -> str:
    """Any plan with `task` and `task_arn` (reload-target stops a running task the same way)."""
    if ctx.resumed and (status := ctx.gw.dms.task(plan.task).status) in ("stopping", "stopped", "failed"):
        return f"the task was already {status}"
    return f"StopReplicationTask accepted; the task is {ctx.gw.dms.stop_task(plan.task_arn)}"


def wait_stopped(ctx: StepContext, plan: RestartPlan | Any) -> str:
    deadline = time.monotonic() + ctx.rt.stop_wait_s
    while (status := ctx.gw.dms.task(plan.task).status) not in ("stopped", "failed"):
        if time.monotonic() > deadline:
            raise StepFailed(f"the task did not stop within {ctx.rt.stop_wait_s:.0f}s (it is {status})")
        ctx.live(f"DMS task {status}")
        ctx.wait(min(ctx.rt.poll_s, 5))
    return f"the task is {status}"


def _start(ctx: StepContext, plan: RestartPlan) -> str:
    if ctx.resumed and (status := ctx.gw.dms.task(plan.task).status) in ("starting", "running"):
        return f"the task was already {status}"
    if plan.start_type == "resume-processing":  # the slot may have been lost since the approval
        lost, _ = lost_slot(ctx.gw, ctx.gw.dms.task(plan.task))
        if lost:
            raise StepFailed(f"not started: the replication slot {lost} lost its WAL since this was approved, so "
                             "resume-processing would fail; reload the target or re-sync the tables instead")
    status = ctx.gw.dms.start_task(plan.task_arn, plan.start_type)
    return f"StartReplicationTask {plan.start_type} accepted; the task is {status}"


FIX = Fix(ActionKind.RESTART_TASK, "Restart DMS task", RestartPlan, prepare, steps)
