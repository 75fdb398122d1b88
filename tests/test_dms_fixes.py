"""The fixes as DMS is really configured, through the approval flow and the worker on the sandbox (moto's
DMS with the sandbox's refusals, fakesnow, a real Redis): a never-run task starts with start-replication;
a lost slot is never resumed (refused before approval, checked again by the worker) and reload-target
is offered to two people; a re-sync of a CDC-only task is refused before approval, and the worker checks
again before the first TRUNCATE."""
from dataclasses import replace

import pytest

from bot.models import ActionKind
from bot.remediation import jobs
from bot.remediation.approvals import State
from bot.remediation.fix import PlanError
from bot.remediation.fixes import FIXES
from test_guard_jobs import reloads, truncates, worker

CHANNEL = "C0INCIDNT"
ALICE, BOB = "U0ALICE01", "U0BOB0002"


def plan(h, kind):
    return FIXES[kind].plan(h.sandbox.catalog.find("orders"), h.sandbox.gateways, list(h.sandbox.catalog.tables))


def approve(h, kind, people=2):
    asked = h.wiring.remediation.request("orders", kind, ALICE, CHANNEL, "the reload the runbook asks for")
    assert asked.ok, asked.text
    if people > 1:
        approved = h.wiring.remediation.approve(asked.request.id, BOB)
        assert approved.ok, approved.text
    return asked.request.id


def test_a_task_that_never_ran_is_started_with_start_replication(make_sandbox, redis, slack):
    from conftest import Harness

    h = Harness(make_sandbox("never-ran", real_aurora=False), redis, slack)
    assert plan(h, ActionKind.RESTART_TASK).steps == (
        f"AWS DMS StartReplicationTask(ReplicationTaskArn={h.sandbox.task_arn}, "
        "StartReplicationTaskType=start-replication)",)
    request_id = approve(h, ActionKind.RESTART_TASK, people=FIXES[ActionKind.RESTART_TASK].people)
    jobs.run_request(worker(h), request_id)
    assert h.wiring.approvals.get(request_id).state is State.SUCCEEDED
    assert h.sandbox.dms_task().start_types == ["start-replication"] and h.sandbox.dms_task().status == "running"


def test_a_lost_slot_is_never_resumed_and_reload_target_needs_two_people(make_sandbox, redis, slack):
    from conftest import Harness

    h = Harness(make_sandbox("slot-lost", real_aurora=False), redis, slack)
    with pytest.raises(PlanError, match="cannot resume: its replication slot dms_orders_slot lost WAL"):
        plan(h, ActionKind.RESTART_TASK)
    reload = plan(h, ActionKind.RELOAD_TARGET)
    assert FIXES[ActionKind.RELOAD_TARGET].people == 2
    assert reload.steps == (f"AWS DMS StartReplicationTask(ReplicationTaskArn={h.sandbox.task_arn}, "
                            "StartReplicationTaskType=reload-target)  — reloads every table of the task",)
    assert any("every table of the task is loaded again: 3 catalog tables" in f for f in reload.facts)
    assert any("drop and recreate it first" in f for f in reload.facts)
    request_id = approve(h, ActionKind.RELOAD_TARGET)
    before = list(h.sandbox.dms_task().start_types)  # the sandbox's own first start
    jobs.run_request(worker(h), request_id)
    assert h.wiring.approvals.get(request_id).state is State.SUCCEEDED
    assert h.sandbox.dms_task().start_types == before + ["reload-target"]


def test_the_worker_checks_the_slot_again_before_it_resumes(make_sandbox, redis, slack):
    from conftest import Harness

    h = Harness(make_sandbox("dms-failed", real_aurora=False), redis, slack)
    request_id = approve(h, ActionKind.RESTART_TASK, people=FIXES[ActionKind.RESTART_TASK].people)
    h.sandbox.aurora._slots = [replace(s, wal_status="lost") for s in h.sandbox.aurora._slots]  # lost meanwhile
    before = list(h.sandbox.dms_task().start_types)
    jobs.run_request(worker(h), request_id)
    done = h.wiring.approvals.get(request_id)
    assert done.state is State.FAILED and h.sandbox.dms_task().start_types == before
    assert any("lost its WAL since this was approved" in line for line in (done.outcome, *done.progress))


def test_a_resync_of_a_cdc_only_task_is_refused_before_approval(make_sandbox, redis, slack):
    from conftest import Harness

    h = Harness(make_sandbox("cdc-only-rows-missing", real_aurora=False), redis, slack)
    asked = h.wiring.remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "rows lost overnight")
    assert not asked.ok and "MigrationType is cdc" in asked.text and "full-load task" in asked.text
    assert asked.request is None and truncates(h) == []


def test_the_worker_checks_the_migration_type_again_before_the_first_truncate(make_sandbox, redis, slack):
    from conftest import Harness

    h = Harness(make_sandbox("healthy", real_aurora=False), redis, slack)
    request_id = approve(h, ActionKind.RESYNC)
    h.sandbox.dms_task().migration_type = "cdc"  # the task was changed to CDC-only after the approval
    jobs.run_request(worker(h), request_id)
    done = h.wiring.approvals.get(request_id)
    assert done.state is State.FAILED and not done.changed
    assert truncates(h) == [] and reloads(h) == []  # the Snowflake tables were never emptied
    assert any("nothing was truncated" in line and "MigrationType is cdc" in line for line in (done.outcome, *done.progress))
