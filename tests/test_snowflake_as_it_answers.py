"""The Snowflake checks and fixes through the real connector against fakesnow's server, with the telemetry
layer in front of it answering as Snowflake's reference pages say: COPY_HISTORY one row per load attempt,
TASK_HISTORY for the whole account (every database's task of that name, RESULT_LIMIT before any WHERE),
SHOW TASKS with ids, predecessors and last_suspended_reason, and a child task's resume refused while its
graph's root runs."""
from datetime import datetime, timedelta, timezone

import pytest
import snowflake.connector

from bench.snowpipe import HISTORY_TABLE, RUNS_TABLE, TASKS_TABLE, SnowpipeTelemetry, create_tables
from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.gateways import GatewayError
from bot.gateways.snowflake import PipeStatus, SnowflakeGateway
from bot.remediation.fixes import resume_merge_task
from syncbot.sandbox.snowflake_server import serving

SPEC = parse_catalog('[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
NOW = datetime.now(timezone.utc)
RUNNING = PipeStatus("RUNNING", last_ingested_at=NOW)


@pytest.fixture
def snow():
    import fakesnow.server

    layer = None

    def wrap(app):
        nonlocal layer
        layer = SnowpipeTelemetry(app, {}, {"STAGING.ORDERS_CDC"})
        return layer

    with serving(wrap) as args:
        cur = fakesnow.server.shared_fs.connect(database="SYNC", schema="PUBLIC").cursor()
        cur.execute("CREATE SCHEMA IF NOT EXISTS STAGING")
        create_tables(cur)
        yield SnowflakeGateway(lambda: snowflake.connector.connect(**args, database="SYNC", schema="PUBLIC")), cur
        cur.close()


def ago(minutes):
    return (NOW - timedelta(minutes=minutes)).replace(tzinfo=None)


def test_a_file_retried_with_success_is_no_longer_failing(snow):
    gw, cur = snow
    cur.executemany(f"INSERT INTO {HISTORY_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", [
        ("STAGING.ORDERS_CDC", "dms/public/orders/a.csv", "Load failed", 0, "bad date", ago(60), "STAGING", "ORDERS_PIPE"),
        ("STAGING.ORDERS_CDC", "dms/public/orders/a.csv", "Loaded", 12, None, ago(20), None, None),  # the retry
        ("STAGING.ORDERS_CDC", "dms/public/orders/b.csv", "Load failed", 0, "bad number", ago(50), "STAGING",
         "ORDERS_PIPE")])
    history = gw.copy_histories(["STAGING.ORDERS_CDC"])["STAGING.ORDERS_CDC"]
    assert len(history) == 3  # one row per attempt, as COPY_HISTORY returns them
    result = checks.check_snowpipe(RUNNING, history, SPEC, NOW)
    assert result.facts["failed_files"] == ["dms/public/orders/b.csv"] and "1 files failed" in result.summary


def test_another_databases_task_of_the_same_name_never_decides(snow):
    gw, cur = snow
    cur.executemany(f"INSERT INTO {TASKS_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", [
        ("ORDERS_MERGE", "STAGING", "started", "1 MINUTE", None, "01sync", "SYNC", None),
        ("ORDERS_MERGE", "STAGING", "started", "1 MINUTE", None, "02dev", "DEV", None)])
    # DEV's clone fails every minute: 60 newer runs than ours, more than RESULT_LIMIT => 50.
    cur.executemany(f"INSERT INTO {RUNS_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    [("ORDERS_MERGE", "STAGING", "FAILED", ago(m), ago(m), "002003", "Object 'DEV.X' does not exist",
                      "DEV", "02dev") for m in range(1, 61)]
                    + [("ORDERS_MERGE", "STAGING", "SUCCEEDED", ago(m), ago(m), None, None, "SYNC", "01sync")
                       for m in (61, 62, 63)])
    state = gw.task_states([SPEC.merge_task])[SPEC.merge_task]
    runs = gw.task_histories([SPEC.merge_task])[SPEC.merge_task]
    assert [r.state for r in runs] == ["SUCCEEDED"] * 3
    assert checks.check_merge_task(state, runs, SPEC, NOW).facts["failing"] is False


def test_a_child_task_resumes_as_snowflake_allows_with_its_suspended_reason(snow):
    gw, cur = snow
    cur.executemany(f"INSERT INTO {TASKS_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", [
        ("SYNC_ROOT", "STAGING", "started", "1 MINUTE", None, "01root", "SYNC", None),
        ("ORDERS_MERGE", "STAGING", "suspended", None, '["SYNC.STAGING.SYNC_ROOT"]', "01merge", "SYNC",
         "USER_SUSPENDED")])
    state = gw.task_states([SPEC.merge_task])[SPEC.merge_task]
    assert (state.child, state.root, state.root_state) == (True, "STAGING.SYNC_ROOT", "started")
    result = checks.check_merge_task(state, [], SPEC, NOW)
    assert "suspended by a user" in result.summary and "last_suspended_reason: USER_SUSPENDED" in "\n".join(result.details)
    with pytest.raises(GatewayError, match="Unable to update graph with root task SYNC.STAGING.SYNC_ROOT since"):
        gw.resume_task(SPEC.merge_task)  # what a plain ALTER TASK … RESUME gets
    plan = resume_merge_task.ResumeTaskPlan(SPEC.merge_task, "STAGING.SYNC_ROOT", True)
    steps = resume_merge_task.steps(plan)
    assert [s.shown for s in steps] == ["ALTER TASK STAGING.SYNC_ROOT SUSPEND", "ALTER TASK STAGING.ORDERS_MERGE RESUME",
                                        "ALTER TASK STAGING.SYNC_ROOT RESUME"]

    class Ctx:
        class gw_:
            snowflake = gw
        gw = gw_

    assert [s.run(Ctx) for s in steps][-1] == "ALTER TASK STAGING.SYNC_ROOT RESUME: done"
    after = gw.task_states([SPEC.merge_task])[SPEC.merge_task]
    assert (after.state, after.root_state) == ("started", "started")
