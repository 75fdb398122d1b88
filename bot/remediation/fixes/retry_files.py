"""Retry failed files: the files Snowpipe failed to load in the last 4 hours are loaded again with
the pipe's own COPY statement (ALTER PIPE … REFRESH would skip them: they are in the load history)."""
from __future__ import annotations

from dataclasses import dataclass

from ...gateways.snowflake import copy_with_files, latest_attempts, relative_to_source
from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext


@dataclass(frozen=True)
class RetryFilesPlan(PlanData):
    definition: str  # the pipe's COPY statement, as DESCRIBE PIPE showed it when requested
    files: tuple[str, ...]


def prepare(s: Situation) -> tuple[RetryFilesPlan, tuple[str, ...]]:
    # A file is failing only while its latest attempt failed (one COPY_HISTORY row per attempt).
    failed = sorted(r.file_name for r in latest_attempts(s.gw.snowflake.copy_history(s.spec.staging_table)) if r.failed)
    if not failed:
        raise PlanError("No failed files in the last 4 hours; nothing to retry.")
    return (RetryFilesPlan(s.gw.snowflake.definition("PIPE", s.spec.pipe), tuple(failed)),
            (f"{len(failed)} files failed to load in the last 4 hours",
             "ALTER PIPE … REFRESH would skip them: failed files are already in the load history"))


def steps(plan: RetryFilesPlan) -> tuple[Step, ...]:
    def load(ctx: StepContext) -> str:
        # COPY skips files already in the load history, so a repeat after a crash loads nothing twice.
        ctx.gw.snowflake.load_files(plan.definition, list(plan.files))
        return f"reloaded {len(plan.files)} files with the pipe's COPY statement"
    return (Step("COPY INTO … FILES", load, shown=_copy_shown(plan)),)


def _copy_shown(plan: RetryFilesPlan) -> str:
    names = relative_to_source(plan.definition, list(plan.files))
    # %-formatting turns the doubled %% of a literal % back into one; replacing them first would not.
    return copy_with_files(plan.definition, len(names)) % tuple(f"'{n}'" for n in names)


FIX = Fix(ActionKind.RETRY_FILES, "Retry failed files", RetryFilesPlan, prepare, steps)
