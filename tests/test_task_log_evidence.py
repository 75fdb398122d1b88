"""The task log in diagnoses, through the sandbox (moto's CloudWatch Logs holds each scenario's log):
read only for a task shown broken, once per task however many of its tables are shown, and shown in
the DMS check's evidence down to the console."""
import io
import json
import time

from botocore.stub import Stubber

from bot.catalog import parse_catalog
from bot.diagnostics.runner import Diagnoser
from bot.gateways import Gateways
from bot.models import CheckName, Section, Status
from syncbot.console import Console
from syncbot.sandbox.pipeline import CATALOG_TOML


def count_log_reads(sandbox) -> list:
    """Every FilterLogEvents the sandbox's CloudWatch Logs client makes (botocore's own event hook)."""
    calls = []
    sandbox.logs_client.meta.events.register("provide-client-params.logs.FilterLogEvents",
                                             lambda params, **_: calls.append(params))
    return calls


def dms_check(diag):
    return diag.check(CheckName.DMS)


def test_a_healthy_fleet_and_a_healthy_table_read_no_log(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    calls = count_log_reads(sandbox)
    diagnoser = Diagnoser(sandbox.gateways)
    diags = diagnoser.diagnose_many(list(sandbox.catalog.tables))
    diagnoser.diagnose(sandbox.catalog.find("orders"))
    assert all(d.verdict.section is Section.HEALTHY for d in diags)
    assert calls == []


def test_a_table_broken_downstream_reads_no_log(make_sandbox):
    sandbox = make_sandbox("pipe-paused", real_aurora=False)
    calls = count_log_reads(sandbox)
    diags = Diagnoser(sandbox.gateways).diagnose_many(list(sandbox.catalog.tables))
    assert diags[0].verdict.section is Section.LAGGING and calls == []


def test_a_failed_task_is_read_once_for_all_its_tables(make_sandbox):
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    calls = count_log_reads(sandbox)
    diags = Diagnoser(sandbox.gateways).diagnose_many(list(sandbox.catalog.tables))
    assert len(calls) == 1  # three tables, one task
    for diag in diags:
        check = dms_check(diag)
        assert check.status is Status.FAILING
        head = next(d for d in check.details if d.startswith("Task log dms-tasks-dms-prod / dms-task-"))
        assert "2 distinct" not in head and "4 distinct" in head
        assert any(d.startswith("11× ") and "Connection timed out" in d for d in check.details)
        assert any("password=[masked]" in d for d in check.details)
        assert not any("Tr0ub4dor" in d for d in check.details)
    # The read ends just after the task stopped (ReplicationTaskStats.StopDate), where its last lines are.
    stopped = sandbox.dms_task().stop_date
    assert abs(calls[0]["endTime"] / 1000 - (stopped.timestamp() + 300)) < 1


def test_a_stalled_table_gets_its_tasks_log_and_its_healthy_neighbours_do_not(make_sandbox):
    sandbox = make_sandbox("stalled", real_aurora=False)
    calls = count_log_reads(sandbox)
    orders, customers, _ = Diagnoser(sandbox.gateways).diagnose_many(list(sandbox.catalog.tables))
    assert len(calls) == 1
    assert orders.verdict.section is Section.STALLED
    check = dms_check(orders)
    assert check.status is Status.WARNING and "its log has 176 errors" in check.summary
    assert any(d.startswith("176× ") and "could not receive data from WAL stream" in d for d in check.details)
    assert customers.verdict.section is Section.HEALTHY
    assert not any(d.startswith("Task log") for d in dms_check(customers).details)


def test_each_broken_task_is_read_once(make_sandbox):
    """Two failed tasks in one fleet view: one read each."""
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    task = sandbox.dms_client.describe_replication_tasks()["ReplicationTasks"][0]
    second = sandbox.dms_client.create_replication_task(
        ReplicationTaskIdentifier="aurora-snowflake-cdc-2", SourceEndpointArn=task["SourceEndpointArn"],
        TargetEndpointArn=task["TargetEndpointArn"], ReplicationInstanceArn=task["ReplicationInstanceArn"],
        MigrationType="full-load-and-cdc", TableMappings=json.dumps({"rules": []}))["ReplicationTask"]
    model = sandbox.dms_task(second["ReplicationTaskArn"])
    model.status, model.stop_reason = "stopped", "STOPPED_AFTER_FULL_LOAD"
    catalog = parse_catalog(CATALOG_TOML.replace('source = "public.payments"',
                                                 'source = "public.payments"\ndms_task = "aurora-snowflake-cdc-2"'),
                            "two tasks")
    calls = count_log_reads(sandbox)
    diags = Diagnoser(sandbox.gateways).diagnose_many(list(catalog.tables))
    assert sorted(c["logStreamNames"][0] for c in calls) == sorted(
        f"dms-task-{arn.rsplit(':', 1)[-1]}" for arn in (sandbox.task_arn, second["ReplicationTaskArn"]))
    payments = next(d for d in diags if d.table == "payments")
    assert "task logging is off (no log stream" in dms_check(payments).details[-1]  # moto: no such stream


def test_logging_off_is_said_with_the_setting(make_sandbox):
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    sandbox.logs_client.delete_log_group(logGroupName="dms-tasks-dms-prod")
    check = dms_check(Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders")))
    assert check.status is Status.FAILING and check.summary.startswith("task aurora-snowflake-cdc is failed")
    assert check.details[-1] == ("Task log: task logging is off (no log group dms-tasks-dms-prod); turn it on "
                                 "with Logging.EnableLogging = true in the task settings")


class SlowLogs:
    """The DMS gateway, but its log read takes `delay` seconds."""

    def __init__(self, inner, delay):
        self._inner, self._delay = inner, delay

    def task_log(self, *args, **kwargs):
        time.sleep(self._delay)
        return self._inner.task_log(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._inner, name)


def test_a_slow_log_read_leaves_the_check_and_verdict_standing(make_sandbox):
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    gw = sandbox.gateways
    slow = Gateways(dms=SlowLogs(gw.dms, 1.2), s3=gw.s3, snowflake=gw.snowflake, aurora=gw.aurora)
    diag = Diagnoser(slow, timeout=0.6).diagnose(sandbox.catalog.find("orders"))
    check = dms_check(diag)
    assert check.status is Status.FAILING and diag.verdict.section is Section.LAGGING
    assert check.details[-1] == "Task log: not read (CloudWatch Logs did not answer within 0.6s)"


class BrokenLogs(SlowLogs):
    def task_log(self, *args, **kwargs):
        raise RuntimeError("driver said password=hunter2")


def test_an_unexpected_failure_of_the_log_read_gives_a_reference_and_no_secret(make_sandbox):
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    gw = sandbox.gateways
    broken = Gateways(dms=BrokenLogs(gw.dms, 0), s3=gw.s3, snowflake=gw.snowflake, aurora=gw.aurora)
    check = dms_check(Diagnoser(broken).diagnose(sandbox.catalog.find("orders")))
    assert check.status is Status.FAILING
    assert check.details[-1].startswith("Task log: not read (CloudWatch Logs failed unexpectedly (RuntimeError, ref ")
    assert "hunter2" not in check.details[-1]


def test_a_refused_log_read_is_said_in_the_evidence(make_sandbox):
    sandbox = make_sandbox("stalled", real_aurora=False)
    stubber = Stubber(sandbox.logs_client)
    stubber.add_client_error("filter_log_events", service_error_code="AccessDeniedException", http_status_code=400)
    stubber.activate()
    orders = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders"))
    check = dms_check(orders)
    assert check.status is Status.OK and orders.verdict.section is Section.STALLED
    assert check.details[-1] == "Task log: not read (CloudWatch Logs: FilterLogEvents failed: AccessDeniedException)"


def console(scenario: str) -> str:
    """`syncbot console --scenario SCENARIO` fed `/sync-status orders`, as its scripted mode runs it."""
    out = io.StringIO()
    session = Console(scenario, out=out)
    try:
        session.run(["/sync-status orders"], echo=True)
    finally:
        session.close()
    return out.getvalue()


def test_the_console_shows_the_latest_distinct_errors_with_counts():
    failed = console("dms-failed")
    assert "Task log dms-tasks-dms-prod / dms-task-" in failed and "13 errors, 9 warnings, 4 distinct" in failed
    assert "11× " in failed and "Connection timed out" in failed
    assert "password=[masked]" in failed and "Tr0ub4dor" not in failed
    stalled = console("stalled")
    assert "its log has 176 errors" in stalled
    assert "176× " in stalled and "could not receive data from WAL stream" in stalled
    assert "44× " in stalled and "swap files exceeded the limit" in stalled
