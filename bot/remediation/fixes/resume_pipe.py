"""Resume pipe: a paused Snowpipe loads again. One paused for longer than Snowflake keeps its file
notifications is stale and is force-resumed; a pipe stopped for another reason is not "fixed" by
resuming, so that is refused with the reason."""
from __future__ import annotations

from dataclasses import dataclass

from ...diagnostics.checks import PIPE_STATES, pipe_stale
from ...models import ActionKind, utcnow
from ..fix import Fix, PlanData, PlanError, Situation
from ...gateways import GatewayError
from ...gateways.snowflake import Refused
from ..steps import Step, StepContext, StepFailed


@dataclass(frozen=True)
class ResumePipePlan(PlanData):
    pipe: str
    force: bool = False  # stale: SYSTEM$PIPE_FORCE_RESUME, since ALTER PIPE … RESUME is refused


def prepare(s: Situation) -> tuple[ResumePipePlan, tuple[str, ...]]:
    pipe = s.spec.pipe
    status = s.gw.snowflake.pipe_status(pipe)
    if status.execution_state == "RUNNING":
        raise PlanError(f"The pipe {pipe} is already RUNNING.")
    facts = (f"pipe {pipe} is {status.execution_state}, {status.pending_file_count} files pending",)
    if pipe_stale(status, utcnow()):
        # ALTER PIPE … RESUME refuses a stale pipe; Snowflake's documented way is a force resume.
        return ResumePipePlan(pipe, force=True), facts + (
            "no file loaded for longer than the 14 days Snowflake keeps notifications: the pipe is stale, so it "
            "is force-resumed; files older than that may not load (re-sync the table)",)
    if status.execution_state != "PAUSED":
        raise PlanError(f"The pipe {pipe} is {status.execution_state}, which resuming does not fix: "
                        f"{PIPE_STATES.get(status.execution_state, 'see the diagnosis')}.")
    return ResumePipePlan(pipe), facts


# What Snowflake's refusal of a plain resume says, and the override SYSTEM$PIPE_FORCE_RESUME then needs
# (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_force_resume).
REFUSALS = (("ownership", "OWNERSHIP_TRANSFER_CHECK_OVERRIDE", "its ownership was transferred while it was paused",
             "run it as a role with OPERATE on the pipe (the bot does not run an override it was not approved for)"),
            ("stale", "STALENESS_CHECK_OVERRIDE", "it is stale: paused longer than its notifications are kept",
             "press Resume pipe again on a fresh diagnosis: a stale pipe's plan is that force resume"))


def force_statement(pipe: str, override: str) -> str:
    return f"SELECT SYSTEM$PIPE_FORCE_RESUME('{pipe}', '{override}')"


def steps(plan: ResumePipePlan) -> tuple[Step, ...]:
    def resume(ctx: StepContext) -> str:
        if plan.force:  # forcing twice is harmless
            ctx.gw.snowflake.force_resume_pipe(plan.pipe)
        else:
            try:
                ctx.gw.snowflake.set_pipe_paused(plan.pipe, False)  # the same ALTER twice is harmless
            except GatewayError as exc:
                # Only Snowflake's refusal is known to have changed nothing; a timeout or a lost connection is
                # reported as it is (the statement may have run).
                if not (isinstance(exc, Refused) or any(word in str(exc).lower() for word, *_ in REFUSALS)):
                    raise
                raise StepFailed(refused_because(plan.pipe, str(exc))) from None
        return f"pipe {plan.pipe} is now {ctx.gw.snowflake.pipe_status(plan.pipe).execution_state}"
    if plan.force:
        return (Step(f"SYSTEM$PIPE_FORCE_RESUME {plan.pipe}", resume,
                     shown=force_statement(plan.pipe, "STALENESS_CHECK_OVERRIDE")),)
    return (Step(f"ALTER PIPE {plan.pipe}", resume, shown=f"ALTER PIPE {plan.pipe} SET PIPE_EXECUTION_PAUSED = FALSE"),)


def refused_because(pipe: str, error: str) -> str:
    """Snowflake's refusal of a plain resume, said with which check refused it and what a person runs next:
    the force resume is a different statement, so it is not run without being asked for."""
    for word, override, why, then in REFUSALS:
        if word in error.lower():
            return (f"Snowflake refused ALTER PIPE … RESUME: {why} ({error}). Nothing changed. The pipe resumes "
                    f"only with {force_statement(pipe, override)}: {then}")
    return f"Snowflake refused ALTER PIPE … RESUME: {error}. Nothing changed"


FIX = Fix(ActionKind.RESUME_PIPE, "Resume pipe", ResumePipePlan, prepare, steps)
