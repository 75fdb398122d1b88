"""Pause pipe: stops Snowpipe loading while files it would reject keep arriving (runbook "Schema
Mismatch"); the files wait in S3 and load once it is resumed."""
from __future__ import annotations

from dataclasses import dataclass

from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext


@dataclass(frozen=True)
class PausePipePlan(PlanData):
    pipe: str


def prepare(s: Situation) -> tuple[PausePipePlan, tuple[str, ...]]:
    status = s.gw.snowflake.pipe_status(s.spec.pipe)
    if status.execution_state == "PAUSED":
        raise PlanError(f"The pipe {s.spec.pipe} is already PAUSED.")
    return (PausePipePlan(s.spec.pipe),
            (f"pipe {s.spec.pipe} is {status.execution_state}, {status.pending_file_count} files pending",))


def steps(plan: PausePipePlan) -> tuple[Step, ...]:
    def pause(ctx: StepContext) -> str:
        ctx.gw.snowflake.set_pipe_paused(plan.pipe, True)  # the same ALTER twice is harmless
        return f"pipe {plan.pipe} is now {ctx.gw.snowflake.pipe_status(plan.pipe).execution_state}"
    return (Step(f"ALTER PIPE {plan.pipe}", pause, shown=f"ALTER PIPE {plan.pipe} SET PIPE_EXECUTION_PAUSED = TRUE"),)


FIX = Fix(ActionKind.PAUSE_PIPE, "Pause pipe", PausePipePlan, prepare, steps)
