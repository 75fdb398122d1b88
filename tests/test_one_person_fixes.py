"""The one-person fixes end to end (bot/remediation/fixes/): a signed click, the worker on real Redis,
what moto and fakesnow were changed by, and what the thread says."""
from clicks import ALICE, BOB, click, diagnose, events, run_worker, statements, thread_note

from bot.gateways.snowflake import latest_attempts
from bot.remediation import audit


def test_pause_pipe_runs_once_for_an_approver_and_is_said_in_the_thread(harness):
    h = harness("load-failed")
    ts, buttons = diagnose(h)
    assert "queued" in click(h, buttons["pause_pipe"], ALICE, message_ts=ts)
    assert h.sandbox.snowflake.statements == []  # the web process runs nothing: the worker does
    again = click(h, buttons["pause_pipe"], BOB, message_ts=ts)  # a double click, or a second person
    assert "is already asked for: <@U0ALICE01> asked at " in again
    run_worker(h)
    assert statements(h, "ALTER PIPE") == ["ALTER PIPE STAGING.ORDERS_PIPE SET PIPE_EXECUTION_PAUSED = TRUE"]
    note = thread_note(h)
    assert note["thread_ts"] == ts and "<@U0ALICE01> ran *Pause pipe*" in note["text"]
    assert "pipe STAGING.ORDERS_PIPE is now PAUSED" in note["text"]
    worker = h.wiring.runtime.worker_id
    assert events(h) == [("requested", ALICE), ("approved", ALICE), ("duplicate", BOB), ("running", worker),
                         ("step", worker), ("step", worker), ("succeeded", worker)]
    assert "already used" in click(h, buttons["pause_pipe"], BOB, message_ts=ts)  # it ended: the button stays used


def test_resume_pipe(harness):
    h = harness("pipe-paused")
    ts, buttons = diagnose(h)
    click(h, buttons["resume_pipe"], ALICE, message_ts=ts)
    run_worker(h)
    assert h.sandbox.snowflake.pipes["STAGING.ORDERS_PIPE"]["executionState"] == "RUNNING"


def test_add_columns_alters_final_then_staging_and_warns_about_the_merge(harness):
    h = harness("schema-mismatch")
    ts, buttons = diagnose(h)
    click(h, buttons["add_columns"], ALICE, message_ts=ts)
    run_worker(h)
    answer = thread_note(h)["text"]
    assert statements(h, "ALTER TABLE") == [
        "ALTER TABLE PUBLIC.ORDERS ADD COLUMN DISCOUNT_CODE VARCHAR(64)",
        "ALTER TABLE PUBLIC.ORDERS ADD COLUMN LOYALTY_POINTS NUMBER(10,0)",
        "ALTER TABLE STAGING.ORDERS_CDC ADD COLUMN DISCOUNT_CODE VARCHAR(64)",
        "ALTER TABLE STAGING.ORDERS_CDC ADD COLUMN LOYALTY_POINTS NUMBER(10,0)",
    ]
    assert "merge task STAGING.ORDERS_MERGE does not mention DISCOUNT_CODE, LOYALTY_POINTS" in answer
    # The columns really exist now (fakesnow's information_schema), so the drift is gone.
    assert "DISCOUNT_CODE" in h.sandbox.snowflake.columns("STAGING.ORDERS_CDC")
    assert h.bot.diagnose(h.bot.find("orders")).check(__import__("bot.models").models.CheckName.SCHEMA).status.value == "ok"


def test_retry_failed_files_uses_the_pipes_copy_with_bound_file_names(harness):
    h = harness("load-failed")
    ts, buttons = diagnose(h)
    click(h, buttons["retry_files"], ALICE, message_ts=ts)
    run_worker(h)
    [copy] = statements(h, "COPY INTO")
    assert copy.startswith("COPY INTO STAGING.ORDERS_CDC FROM @SYNC.STAGING.CDC_STAGE/dms/public/orders/ FILES = ('")
    assert copy.count(".csv'") == 2 and "dms/public/orders/2" not in copy.split("FILES")[1]
    # COPY_HISTORY keeps the failed attempt and adds the new one: each file's latest attempt loaded
    assert not [r for r in latest_attempts(h.sandbox.snowflake.history["STAGING.ORDERS_CDC"]) if r.failed]


def test_retry_failed_files_with_a_literal_percent_in_the_pipes_copy(harness):
    """A COPY definition may hold a literal % (a NULL_IF or PATTERN); the plan shows it and the load binds."""
    h = harness("load-failed")
    definition = ("COPY INTO STAGING.ORDERS_CDC FROM @SYNC.STAGING.CDC_STAGE/dms/public/orders/ "
                  "FILE_FORMAT = (TYPE = CSV NULL_IF = ('%NULL%', '100%'))")
    h.sandbox.snowflake.definitions[("PIPE", "STAGING.ORDERS_PIPE")] = definition
    ts, buttons = diagnose(h)
    answer = click(h, buttons["retry_files"], ALICE, message_ts=ts)
    assert "Sorry" not in answer and "queued" in answer  # the plan (shown to people) was built
    run_worker(h)
    [copy] = statements(h, "COPY INTO")
    assert "NULL_IF = ('%NULL%', '100%')" in copy and "FILES = ('" in copy
    # COPY_HISTORY keeps the failed attempt and adds the new one: each file's latest attempt loaded
    assert not [r for r in latest_attempts(h.sandbox.snowflake.history["STAGING.ORDERS_CDC"]) if r.failed]


def test_confirm_dialogs_are_plain_text_within_slacks_limit(harness):
    h = harness("load-failed")
    _, buttons = diagnose(h)
    fixes = [b for b in buttons.values() if b["type"] == "button"]  # the ⋯ menu has no dialog of its own
    assert fixes
    for button in fixes:
        confirm = button["confirm"]
        assert confirm["text"]["type"] == "plain_text" and confirm["title"]["type"] == "plain_text"
        assert len(confirm["text"]["text"]) <= 300 and "*" not in confirm["text"]["text"]


def test_restart_failed_task_resumes_processing(harness):
    h = harness("dms-failed")
    ts, buttons = diagnose(h)
    click(h, buttons["restart_task"], ALICE, message_ts=ts)
    run_worker(h)
    assert "StartReplicationTask resume-processing accepted" in thread_note(h)["text"]
    assert h.sandbox.dms_task().status == "running"


def test_restart_stalled_running_task_stops_it_first(harness):
    h = harness("stalled")
    ts, buttons = diagnose(h)
    click(h, buttons["restart_task"], ALICE, message_ts=ts)
    run_worker(h)
    progress = [e.detail for e in reversed(audit.read(h.redis, "orders")) if e.event == "step"]
    assert progress[:2] == ["stop the task: started", "stop the task: done"]
    assert h.sandbox.dms_task().status == "running"


def test_one_person_fix_that_fails_says_what_ran_in_the_thread(harness):
    h = harness("dms-failed")
    ts, buttons = diagnose(h)
    click(h, buttons["restart_task"], ALICE, message_ts=ts)
    gateways = h.bot.diagnoser.gateways

    def refused(*args, **kwargs):
        from bot.gateways import GatewayError
        raise GatewayError("StartReplicationTask failed: InvalidResourceStateFault")

    gateways.dms.start_task = refused
    run_worker(h)
    note = thread_note(h)["text"]
    assert "ran, and it failed" in note and "InvalidResourceStateFault" in note
    assert "before changing anything" in note  # the only step refused: nothing else ran
