"""Restart DMS task (runbook "DMS Task Stalled"): a running but stalled task is stopped first; then
it is started with resume-processing, so it carries on from its checkpoint."""
from __future__ import annotations

import time
from dataclasses import dataclass

from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext, StepFailed


@dataclass(frozen=True)
class RestartPlan(PlanData):
    task: str  # the task's identifier
    task_arn: str
    stop_first: bool  # the task was running (stalled): stop it before starting it


def prepare(s: Situation) -> tuple[RestartPlan, tuple[str, ...]]:
    task = s.gw.dms.task(s.spec.dms_task)
    if task.status not in ("running", "stopped", "failed", "ready"):
        raise PlanError(f"The DMS task is {task.status}; it can be restarted once it is stopped or failed.")
    sharing = sorted(t.name for t in s.tables if t.dms_task == s.spec.dms_task)
    facts = (f"task {task.identifier} is {task.status}" + (f" ({task.stop_reason})" if task.stop_reason else ""),
             f"the task replicates {len(sharing)} catalog tables: {', '.join(sharing)}")
    return RestartPlan(task.identifier, task.arn, task.status == "running"), facts


def steps(plan: RestartPlan) -> tuple[Step, ...]:
    start = Step("start the task", lambda ctx: _start(ctx, plan),
                 shown=f"AWS DMS StartReplicationTask(ReplicationTaskArn={plan.task_arn}, "
                       "StartReplicationTaskType=resume-processing)")
    if not plan.stop_first:
        return (start,)
    return (Step("stop the task", lambda ctx: _stop(ctx, plan),
                 shown=f"AWS DMS StopReplicationTask(ReplicationTaskArn={plan.task_arn})  — running but stalled"),
            Step("wait until stopped", lambda ctx: _wait_stopped(ctx, plan), changes=False,
                 shown="wait until the task reports stopped"),
            start)


def _stop(ctx: StepContext, plan: RestartPlan) -> str:
    if ctx.resumed and (status := ctx.gw.dms.task(plan.task).status) in ("stopping", "stopped", "failed"):
        return f"the task was already {status}"
    return f"StopReplicationTask accepted; the task is {ctx.gw.dms.stop_task(plan.task_arn)}"


def _wait_stopped(ctx: StepContext, plan: RestartPlan) -> str:
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
    status = ctx.gw.dms.start_task(plan.task_arn, "resume-processing")
    return f"StartReplicationTask resume-processing accepted; the task is {status}"


FIX = Fix(ActionKind.RESTART_TASK, "Restart DMS task", RestartPlan, prepare, steps)
