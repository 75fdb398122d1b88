"""The diagnosis-side guards: the verdict's runbook rules that decide which button is offered, one
GetMetricData call for a fleet of tasks, and the redactions as the production wiring applies them
(services -> doctor, services -> Aurora gateway, the Bolt app's error reply). scripts/mutate.py
deletes each guard in turn and expects one of these tests to fail."""
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from bot.diagnostics.runner import Diagnoser
from bot.diagnostics.verdict import decide
from bot.gateways import GatewayError
from bot.models import ActionKind, CheckName, CheckResult, Section, Status, Where
from bot.services import build_gateways
from bot.settings import Settings
from clicks import ALICE, click, diagnose  # Slack's own request path, signed
from test_verdict import HEALTHY, bad

REPO = Path(__file__).resolve().parent.parent
DEAD_PG = "postgresql://syncbot:hunter2@127.0.0.1:1/aurora"


def verdict(*replace):
    checks = dict(HEALTHY)
    checks.update({c.name: c for c in replace})
    return decide(tuple(checks.values()))


QUIET_S3 = CheckResult(CheckName.S3, Status.WARNING, "no CDC files in the last hour", facts={"files_landing": False})


# -- verdict -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("evidence", [bad(CheckName.LATENCY, high=True), bad(CheckName.SLOT, slot_problem=True)],
                         ids=["latency", "slot"])
def test_a_running_task_without_files_is_stalled_by_latency_or_the_slot_even_while_fresh(evidence):
    v, actions = verdict(QUIET_S3, evidence)
    assert (v.section, v.where) == (Section.STALLED, Where.UPSTREAM)
    assert actions == (ActionKind.RESTART_TASK, ActionKind.RESYNC)
    assert f"{evidence.name}: bad" in v.reasons


def test_an_errored_table_while_the_task_runs_offers_resync_not_restart():
    # Restarting a running task does not reload a suspended table; ReloadTables does (it needs the
    # task running, which it is).
    v, actions = verdict(bad(CheckName.DMS, running=True, table_errored=True))
    assert (v.section, v.where, actions) == (Section.LAGGING, Where.UPSTREAM, (ActionKind.RESYNC,))
    assert v.summary.startswith("DMS reports an error on this table")


def test_a_stopped_task_with_an_errored_table_is_restarted_first():
    _, actions = verdict(bad(CheckName.DMS, running=False, table_errored=True))
    assert actions == (ActionKind.RESTART_TASK,)


# -- one GetMetricData call for every task -------------------------------------------------------------

def test_the_latency_of_several_tasks_comes_from_one_get_metric_data_call(make_sandbox, monkeypatch):
    sandbox = make_sandbox("healthy", real_aurora=False)
    dms = sandbox.dms_client
    [task] = dms.describe_replication_tasks()["ReplicationTasks"]
    names = ["aurora-snowflake-cdc"]
    for name in ("billing-cdc", "crm-cdc"):  # two more tasks on the same instance
        created = dms.create_replication_task(
            ReplicationTaskIdentifier=name, SourceEndpointArn=task["SourceEndpointArn"],
            TargetEndpointArn=task["TargetEndpointArn"], ReplicationInstanceArn=task["ReplicationInstanceArn"],
            MigrationType="full-load-and-cdc", TableMappings=json.dumps({"rules": []}))["ReplicationTask"]
        dms.start_replication_task(ReplicationTaskArn=created["ReplicationTaskArn"],
                                   StartReplicationTaskType="start-replication")
        names.append(name)
    specs = [dataclasses.replace(spec, dms_task=name) for spec, name in zip(sandbox.catalog.tables, names)]
    cloudwatch, calls = sandbox.cloudwatch_client, []
    real = cloudwatch.get_metric_data

    def counted(**kwargs):
        calls.append(len(kwargs["MetricDataQueries"]))
        return real(**kwargs)

    monkeypatch.setattr(cloudwatch, "get_metric_data", counted)
    diags = Diagnoser(sandbox.gateways).diagnose_many(specs)
    assert all(d.check(CheckName.LATENCY).status is not Status.UNKNOWN for d in diags)
    assert calls == [6]  # three tasks, two latency metrics each, one call


# -- redactions as the production wiring applies them ---------------------------------------------------

def test_the_doctor_shows_the_redis_url_without_its_password(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": "redis://:hunter2@127.0.0.1:1/0", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "SYNCBOT_CHECK_TIMEOUT": "1",
           "AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_MAX_ATTEMPTS": "1", "HOME": str(tmp_path),
           "PYTHONPATH": str(REPO)}  # this checkout's code, whatever is installed
    result = subprocess.run([sys.executable, "-m", "syncbot.cli", "doctor", "--json"], capture_output=True, text=True,
                            timeout=120, env=env, cwd=tmp_path)
    lines = json.loads(result.stdout)["lines"]
    [redis_line] = [line for line in lines if line["area"] == "Redis"]
    assert redis_line["subject"] == "redis://127.0.0.1:1/0"
    assert "hunter2" not in result.stdout + result.stderr


def test_aurora_errors_reach_users_as_one_trimmed_line(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(psycopg.OperationalError) as raw:
        psycopg.connect(DEAD_PG, connect_timeout=1)
    assert len(str(raw.value).strip().splitlines()) > 1  # libpq's answer has a hint line: trimming matters
    gateways = build_gateways(Settings(_env_file=None, aurora_database_url=DEAD_PG))
    with pytest.raises(GatewayError) as info:
        gateways.aurora.columns("public", "orders")
    message = str(info.value)
    assert message == str(raw.value).strip().splitlines()[0][:300]
    assert "\n" not in message and "hunter2" not in message


def test_an_unexpected_error_in_a_click_is_answered_without_its_text(harness, monkeypatch):
    h = harness("pipe-paused")
    ts, buttons = diagnose(h)

    def broken(*args, **kwargs):
        raise RuntimeError("connection to snowflake failed: password=hunter2")

    monkeypatch.setattr(h.wiring.remediation, "click", broken)
    answer = click(h, buttons["resume_pipe"], ALICE, message_ts=ts, status=500)  # Bolt's answer to an error
    assert answer.startswith("Sorry, something went wrong on my side (reference `")
    assert "hunter2" not in answer and "RuntimeError" not in answer
