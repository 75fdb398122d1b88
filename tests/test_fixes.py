"""The fix registry (bot/remediation/fixes/): every fix kind is one module, its approvers read the
lines of the very steps the worker runs, and the approved plan survives the trip through Redis's JSON
unchanged (so the worker runs, and the approval's hash binds, exactly what was shown)."""
import json

import pytest

from bot.models import ActionKind
from bot.remediation.fix import Fix, PlanError
from bot.remediation.fixes import EVERYWHERE, FIXES, QUEUES
from bot.remediation.fixes.fix_columns import ColumnChange
from bot.remediation.fixes.resync import ResyncPlan

# A scenario of the sandbox in which each fix applies, so its plan is worked out from real gateways.
APPLIES = {
    ActionKind.RESTART_TASK: "dms-failed",
    ActionKind.PAUSE_PIPE: "healthy",
    ActionKind.RESUME_PIPE: "pipe-paused",
    ActionKind.FIX_COLUMNS: "column-widened",
    ActionKind.RESUME_TASK: "merge-task-suspended",
    ActionKind.RETRY_FILES: "load-failed",
    ActionKind.RESYNC: "healthy",
}


def test_every_fix_kind_is_one_registered_module():
    assert set(FIXES) == set(ActionKind) == set(APPLIES)
    for kind, fix in FIXES.items():
        assert fix.kind is kind and fix.label and fix.queue in QUEUES
    assert EVERYWHERE == (ActionKind.RESYNC,)
    assert QUEUES == ("syncbot-fixes", "syncbot-resync")  # a re-sync never waits behind the quick fixes


def test_a_fix_that_deletes_data_cannot_be_declared_for_one_person():
    resync = FIXES[ActionKind.RESYNC]
    assert resync.destructive and resync.people == 2
    with pytest.raises(ValueError, match="at least two people"):
        Fix(ActionKind.RESYNC, "Re-sync table", ResyncPlan, resync.prepare, resync.steps, people=1, destructive=True)


@pytest.mark.parametrize("kind", list(APPLIES), ids=str)
def test_what_approvers_read_is_what_the_worker_runs_after_the_json_round_trip(kind, make_sandbox):
    sandbox = make_sandbox(APPLIES[kind], real_aurora=kind is ActionKind.FIX_COLUMNS)
    fix = FIXES[kind]
    plan = fix.plan(sandbox.catalog.find("orders"), sandbox.gateways, list(sandbox.catalog.tables))
    stored = json.loads(json.dumps(plan.data.to_json()))  # as Approvals.create stores it, as get reads it
    again = fix.plan_type.from_json(stored)
    assert again == plan.data  # typed again, tuples and all
    assert fix.shown(again) == plan.steps and plan.steps  # the worker's steps show the approved lines
    assert [s.shown for s in fix.approved_steps(stored) if s.shown] == list(plan.steps)
    assert plan.facts


def test_the_plan_hash_binds_the_data_not_only_the_text(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    fix = FIXES[ActionKind.RESYNC]
    plan = fix.plan(sandbox.catalog.find("orders"), sandbox.gateways, list(sandbox.catalog.tables))
    from dataclasses import replace

    other = replace(plan, data=replace(plan.data, pipe="STAGING.OTHER_PIPE"))  # not in any shown line
    assert other.steps == plan.steps and other.hash != plan.hash


def test_a_stored_plan_that_does_not_fit_its_fix_is_refused():
    resume = FIXES[ActionKind.RESUME_TASK]
    with pytest.raises(ValueError, match="fields this fix does not know"):
        resume.approved_steps({"merge_task": "STAGING.ORDERS_MERGE", "extra_table": "PUBLIC.PAYMENTS"})
    with pytest.raises(TypeError):
        resume.approved_steps({})


def test_column_changes_come_back_typed():
    fix = FIXES[ActionKind.FIX_COLUMNS]
    data = {"changes": [["PUBLIC.ORDERS", "NOTE", "add", "VARCHAR(16777216)"]], "added": ["NOTE"],
            "merge_task": "STAGING.ORDERS_MERGE"}
    plan = fix.plan_type.from_json(data)
    assert plan.changes == (ColumnChange("PUBLIC.ORDERS", "NOTE", "add", "VARCHAR(16777216)"),)
    assert plan.changes[0].op == "add" and plan.added == ("NOTE",)
    assert fix.shown(plan)[0] == "ALTER TABLE PUBLIC.ORDERS ADD COLUMN NOTE VARCHAR(16777216);"


def test_plans_that_do_not_apply_say_why(make_sandbox):
    sandbox = make_sandbox("pipe-paused", real_aurora=False)
    spec, tables = sandbox.catalog.find("orders"), list(sandbox.catalog.tables)
    with pytest.raises(PlanError, match="already PAUSED"):
        FIXES[ActionKind.PAUSE_PIPE].plan(spec, sandbox.gateways, tables)
    with pytest.raises(PlanError, match="No failed files"):
        FIXES[ActionKind.RETRY_FILES].plan(spec, sandbox.gateways, tables)
