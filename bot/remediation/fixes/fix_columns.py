"""Fix columns (runbook "Schema Mismatch" steps 2-4): the columns Aurora has and Snowflake lacks are
added, those too narrow for Aurora's values widened in place, final table first, then staging; then
the merge task is checked for the new columns. What cannot change in place is explained, not done."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, NamedTuple, Self

from ...diagnostics.checks import check_schema
from ...gateways import GatewayError
from ...gateways.snowflake import column_ddl
from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext, StepFailed


class ColumnChange(NamedTuple):
    table: str
    column: str
    op: str  # "add" | "type"
    sf_type: str


@dataclass(frozen=True)
class FixColumnsPlan(PlanData):
    changes: tuple[ColumnChange, ...]  # in the order they run
    added: tuple[str, ...]  # the new columns' names, which the merge task should mention
    merge_task: str

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        plan = super().from_json(data)
        return cls(tuple(ColumnChange(*change) for change in plan.changes), plan.added, plan.merge_task)


def prepare(s: Situation) -> tuple[FixColumnsPlan, tuple[str, ...]]:
    spec, sf = s.spec, s.gw.snowflake
    aurora = s.gw.aurora.columns(spec.source_schema, spec.source_table)
    drift = check_schema(aurora, sf.column_types(spec.final_table), sf.column_types(spec.staging_table), spec)
    if not drift.facts["alters"]:
        if drift.details:
            raise PlanError("Nothing here can be changed in place: " + " ".join(drift.details))
        raise PlanError("Snowflake already has every Aurora column with room for its values; nothing to change.")
    facts = (drift.summary,) + tuple(f"not changed here: {u}" for u in drift.facts["unfixable"])
    added = sorted({c for cols in drift.facts["missing"].values() for c in cols})
    changes = tuple(ColumnChange(*change) for change in drift.facts["changes"])
    return FixColumnsPlan(changes, tuple(added), spec.merge_task), facts


def steps(plan: FixColumnsPlan) -> tuple[Step, ...]:
    """Every statement is checked in the first step, before the first ALTER runs: a refused name
    never leaves the tables half changed. Then one ALTER a step."""
    return (Step("check every statement", lambda ctx: _check_statements(plan), changes=False),
            *(Step(f"{'add' if c.op == 'add' else 'widen'} {c.column[:40]} in {c.table}", _change_column(c),
                   shown=_shown(c)) for c in plan.changes),
            Step("check the merge task", lambda ctx: _check_merge(ctx, plan), changes=False,
                 shown=f"DESCRIBE TASK {plan.merge_task}  — warn if the merge does not mention the new columns "
                       "(runbook step 4)"))


def _shown(change: ColumnChange) -> str:
    try:
        return column_ddl(*change) + ";"
    except GatewayError as exc:  # a tampered plan: the first step refuses it before anything runs
        return f"refused: {exc}"


def _check_statements(plan: FixColumnsPlan) -> str:
    try:
        statements = [column_ddl(*change) for change in plan.changes]
    except GatewayError as exc:
        raise StepFailed(f"nothing was changed: {exc}") from None
    return f"{len(statements)} statements checked"


def _change_column(change: ColumnChange) -> Callable[[StepContext], str]:
    def run(ctx: StepContext) -> str:
        if ctx.resumed and change.op == "add" and change.column.upper() in ctx.gw.snowflake.column_types(change.table):
            return f"{change.column} was already in {change.table}"
        # SET DATA TYPE to the type a column already has changes nothing, so a repeat is harmless.
        [sql] = ctx.gw.snowflake.change_columns([change])
        return sql
    return run


def _check_merge(ctx: StepContext, plan: FixColumnsPlan) -> str:
    task = plan.merge_task
    if not plan.added:
        return "no new columns: the merge task needs no change"
    try:
        definition = ctx.gw.snowflake.definition("TASK", task).upper()
    except GatewayError as exc:
        return f"warning: could not read the merge task {task}: {exc}"
    absent = [c for c in plan.added if c not in definition]
    if absent:
        return (f"warning: the merge task {task} does not mention {', '.join(absent)}: update its logic "
                "(runbook Schema Mismatch step 4)")
    return f"the merge task {task} already mentions the new columns"


FIX = Fix(ActionKind.FIX_COLUMNS, "Fix columns", FixColumnsPlan, prepare, steps)
