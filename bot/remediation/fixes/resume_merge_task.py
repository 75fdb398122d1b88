"""Resume merge task: a suspended Snowflake task that merges staging into the final table is resumed;
its next run merges what staging gathered meanwhile."""
from __future__ import annotations

from dataclasses import dataclass

from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext


@dataclass(frozen=True)
class ResumeTaskPlan(PlanData):
    merge_task: str


def prepare(s: Situation) -> tuple[ResumeTaskPlan, tuple[str, ...]]:
    task = s.spec.merge_task
    state = s.gw.snowflake.task_states([task]).get(task)
    if state is None:
        raise PlanError(f"The merge task {task} cannot be found (dropped, or this role lacks MONITOR).")
    if state.state != "suspended":
        raise PlanError(f"The merge task {task} is already {state.state}.")
    return ResumeTaskPlan(task), (f"merge task {task} is suspended; schedule {state.schedule or 'after its predecessor'}",
                                  "its next run merges what staging gathered meanwhile")


def steps(plan: ResumeTaskPlan) -> tuple[Step, ...]:
    def resume(ctx: StepContext) -> str:
        ctx.gw.snowflake.resume_task(plan.merge_task)  # resuming a started task is harmless
        return f"resumed merge task {plan.merge_task}"
    return (Step(f"ALTER TASK {plan.merge_task} RESUME", resume, shown=f"ALTER TASK {plan.merge_task} RESUME"),)


FIX = Fix(ActionKind.RESUME_TASK, "Resume merge task", ResumeTaskPlan, prepare, steps)
