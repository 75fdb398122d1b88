"""The new fix buttons end to end: a signed /sync-status through Bolt, the button's click, and the
statement it runs (fakesnow for tables, the sandbox's Snowpipe and task stand-ins for the rest)."""
import pytest

from bot.models import ActionKind, CheckName
from bot.remediation.fixes import FIXES
from bot.remediation.steps import StepContext, StepFailed

from clicks import ALICE, click, diagnose, run_worker, statements, thread_note

HOSTILE = "X NUMBER; GRANT ROLE ACCOUNTADMIN TO USER MALLORY; --"


def test_resume_merge_task_runs_alter_task_resume_after_the_confirm_dialog(harness):
    h = harness("merge-task-suspended")
    ts, buttons = diagnose(h)
    button = buttons["resume_task"]
    assert button["text"]["text"] == "Resume merge task" and button["confirm"]["confirm"]["text"] == "Resume merge task"
    assert "queued" in click(h, button, ALICE, message_ts=ts)
    run_worker(h)
    assert statements(h, "ALTER TASK") == ["ALTER TASK STAGING.ORDERS_MERGE RESUME"]
    assert h.sandbox.snowflake.tasks["STAGING.ORDERS_MERGE"]["state"] == "started"
    note = thread_note(h)
    assert note["thread_ts"] == ts and "ran *Resume merge task*" in note["text"]
    assert "resumed merge task STAGING.ORDERS_MERGE" in note["text"]


def test_resume_of_a_stale_pipe_force_resumes_it(harness):
    h = harness("stale-pipe")
    ts, buttons = diagnose(h)
    assert set(buttons) == {"resume_pipe", "resync"}
    verdict = h.slack.of("chat.postMessage")[-1].params["blocks"][1]["text"]["text"]
    assert "older than 14 days may not load" in verdict
    click(h, buttons["resume_pipe"], ALICE, message_ts=ts)
    run_worker(h)
    assert h.sandbox.snowflake.statements == [
        "SELECT SYSTEM$PIPE_FORCE_RESUME('STAGING.ORDERS_PIPE', 'STALENESS_CHECK_OVERRIDE')"]
    assert h.sandbox.snowflake.pipes["STAGING.ORDERS_PIPE"]["executionState"] == "RUNNING"


def test_fix_columns_widens_final_then_staging(harness):
    h = harness("column-widened")
    ts, buttons = diagnose(h)
    assert buttons["add_columns"]["text"]["text"] == "Fix columns"
    click(h, buttons["add_columns"], ALICE, message_ts=ts)
    run_worker(h)
    assert "ran *Fix columns* on `orders`" in thread_note(h)["text"]
    assert statements(h, "ALTER TABLE") == [
        "ALTER TABLE PUBLIC.ORDERS ALTER COLUMN STATUS SET DATA TYPE VARCHAR(255)",
        "ALTER TABLE PUBLIC.ORDERS ALTER COLUMN TOTAL SET DATA TYPE NUMBER(14,2)",
        "ALTER TABLE STAGING.ORDERS_CDC ALTER COLUMN STATUS SET DATA TYPE VARCHAR(255)",
        "ALTER TABLE STAGING.ORDERS_CDC ALTER COLUMN TOTAL SET DATA TYPE NUMBER(14,2)",
    ]
    assert h.sandbox.snowflake.column_types("STAGING.ORDERS_CDC")["STATUS"].char_length == 255
    after = h.bot.diagnose(h.bot.find("orders")).check(CheckName.SCHEMA)
    assert after.status.value == "ok"


def test_rows_missing_offers_resync(harness):
    h = harness("rows-missing")
    _, buttons = diagnose(h)
    assert set(buttons) == {"resync"}
    text = str(h.slack.of("chat.postMessage")[-1].params["blocks"])
    assert "Aurora holds 3,000 rows and the final table 2" in text


def test_a_hostile_column_name_in_a_plan_runs_nothing(make_sandbox):
    """Plan data tampered in the approval store (or a name that slipped past the check) must not leave
    the tables half changed: the valid ALTER before the hostile one does not run either. The steps
    run in order, as the worker runs them, until one fails."""
    sandbox = make_sandbox("column-widened", real_aurora=False)
    data = {"changes": [["PUBLIC.ORDERS", "STATUS", "type", "VARCHAR(255)"],
                        ["PUBLIC.ORDERS", HOSTILE, "add", "NUMBER(10,0)"]],
            "added": [HOSTILE], "merge_task": "STAGING.ORDERS_MERGE"}
    ctx = StepContext(gw=sandbox.gateways, lease=None, resumed=False, started_at=0.0, rt=None)
    with pytest.raises(StepFailed, match="nothing was changed: refusing column name"):
        for step in FIXES[ActionKind.FIX_COLUMNS].approved_steps(data):
            step.run(ctx)
    assert sandbox.snowflake.statements == []
    assert sandbox.snowflake.column_types("PUBLIC.ORDERS")["STATUS"].char_length == 32


@pytest.mark.parametrize("scenario, press, statement", [
    ("merge-task-suspended", "Resume merge task", "ALTER TASK STAGING.ORDERS_MERGE RESUME"),
    ("stale-pipe", "Resume pipe", "SYSTEM$PIPE_FORCE_RESUME('STAGING.ORDERS_PIPE', 'STALENESS_CHECK_OVERRIDE')"),
    ("column-widened", "Fix columns", "ALTER TABLE PUBLIC.ORDERS ALTER COLUMN STATUS SET DATA TYPE VARCHAR(255)"),
])
def test_console_scenarios_press_the_fix(scenario, press, statement):
    import io

    from syncbot.console import Console

    out = io.StringIO()
    console = Console(scenario, out=out)
    try:
        console.run(["/sync-status orders"], echo=True)
        number = next(i for i, b in enumerate(console.buttons, 1) if b["text"]["text"] == press)
        console.run([f"press {number}"], echo=True)
    finally:
        console.close()
    assert any(statement in s for s in console.sandbox.snowflake.statements), console.sandbox.snowflake.statements
    assert f"ran *{press}*" in out.getvalue() or f"ran {press}" in out.getvalue()


def test_fixes_that_no_longer_apply_are_refused_with_the_reason(make_sandbox):
    from bot.remediation.fix import PlanError

    sandbox = make_sandbox("healthy", real_aurora=False)
    spec, tables = sandbox.catalog.find("orders"), list(sandbox.catalog.tables)
    with pytest.raises(PlanError, match="STAGING.ORDERS_MERGE is already started"):
        FIXES[ActionKind.RESUME_TASK].plan(spec, sandbox.gateways, tables)
    sandbox.snowflake.pipes["STAGING.ORDERS_PIPE"]["executionState"] = "STOPPED_STAGE_DROPPED"
    with pytest.raises(PlanError, match="which resuming does not fix: its stage was dropped"):
        FIXES[ActionKind.RESUME_PIPE].plan(spec, sandbox.gateways, tables)
    with pytest.raises(PlanError, match="nothing to change"):
        FIXES[ActionKind.FIX_COLUMNS].plan(spec, sandbox.gateways, tables)
