"""Fix buttons end to end: signed clicks through Bolt, real Redis for approvals and the audit trail,
moto/fakesnow for what the fixes change, RQ's worker for the re-sync."""
import json
import threading

import pytest

from bot.gateways.snowflake import latest_attempts
from bot.remediation import audit, jobs
from syncbot.sandbox.slack import block_actions_body, bolt_request, fill_form, slash_command_body

CHANNEL = "C0INCIDNT"
ALICE, BOB, CAROL, MALLORY = "U0ALICE01", "U0BOB0002", "U0CAROL03", "U0MALLORY"
REASON = "orders lost rows overnight"  # what the form asking why a two-person fix should run is given


def diagnose(h, table="orders", user=ALICE):
    h.app.dispatch(bolt_request(slash_command_body(table, user, CHANNEL, h.slack.response_url()), h.secret))
    message = h.slack.of("chat.postMessage")[-1]
    buttons = {e["action_id"].rsplit(".", 1)[-1]: e for b in message.params["blocks"] if b["type"] == "actions"
               for e in b["elements"] if e["type"] == "button"}
    return message.ts, buttons


def click(h, button, user, message_ts="1.000001", thread_ts=None, app=None, status=200):
    action = {"action_id": button["action_id"], "block_id": "b", "value": button["value"], "text": button["text"]}
    body = json.loads(__import__("urllib.parse").parse.parse_qs(
        block_actions_body(action, user, CHANNEL, message_ts, h.slack.response_url()))["payload"][0])
    if thread_ts:
        body["container"]["thread_ts"] = thread_ts
    raw = __import__("urllib.parse").parse.urlencode({"payload": json.dumps(body)})
    forms = len(h.slack.of("views.open"))
    response = (app or h.app).dispatch(bolt_request(raw, h.secret))
    assert response.status == status
    fill_form(app or h.app, h.slack, h.secret, user, REASON, since=forms)  # a two-person fix asks why first
    return h.slack.of("response_url")[-1].params["text"]


def approval_message(h):
    posted = [c for c in h.slack.of("chat.postMessage") if c.params.get("text", "").startswith("Re-sync table")]
    assert len(posted) == 1
    buttons = {e["text"]["text"]: e for b in posted[0].params["blocks"] if b["type"] == "actions" for e in b["elements"]}
    return posted[0], buttons


def statements(h, word):
    return [s for s in h.sandbox.snowflake.statements if s.startswith(word)]


def events(h, table="orders"):
    return [(e.event, e.user) for e in reversed(audit.read(h.redis, table))]


def run_worker(h):
    h.wiring.worker().work(burst=True)


def queued(h):
    return sum(len(q) for q in h.wiring.queues.values())


def redeliver_and_run(h, request_id):
    """A stale or forged queue entry for a request that must not run: the worker really tries it,
    so "nothing ran" afterwards is the claim's refusal, not an empty queue."""
    h.wiring.queues["syncbot-resync"].enqueue("bot.remediation.jobs.run_job", request_id)
    assert queued(h) == 1
    run_worker(h)
    assert queued(h) == 0


def thread_note(h):
    return h.slack.of("chat.postMessage")[-1].params


# -- one-person fixes ------------------------------------------------------------------------------

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


# -- who may click -------------------------------------------------------------------------------

def test_non_approver_is_refused_and_nothing_runs(harness):
    h = harness("pipe-paused")
    ts, buttons = diagnose(h, user=MALLORY)
    answer = click(h, buttons["resume_pipe"], MALLORY, message_ts=ts)
    assert "Only approvers can run fixes" in answer and "<@U0ALICE01>" in answer
    assert h.sandbox.snowflake.statements == [] and events(h) == []


def test_a_button_works_only_for_the_fix_its_offer_was_made_for(harness):
    """The action id names the kind, the value the offer: an offer id sent with another kind's action id
    (or picked from the menu, which holds only the fixes offered for every table) finds nothing."""
    h = harness("pipe-paused")
    ts, buttons = diagnose(h)
    forged = {**buttons["resume_pipe"], "action_id": "syncbot.fix.resync"}
    assert "no longer valid" in click(h, forged, ALICE, message_ts=ts)
    overflow = menu(h.slack.of("chat.postMessage")[-1])
    assert "no longer valid" in choose(h, overflow, {"text": {"type": "plain_text", "text": "Re-sync table…"},
                                                     "value": buttons["resume_pipe"]["value"]}, ALICE, ts)
    assert h.sandbox.snowflake.statements == [] and events(h) == []


# -- two-person re-sync --------------------------------------------------------------------------

def request_resync(h):
    ts, buttons = diagnose(h)
    answer = click(h, buttons["resync"], ALICE, message_ts=ts)
    assert "1 more approver(s) must approve" in answer
    message, approve_buttons = approval_message(h)
    return ts, message, approve_buttons


def test_resync_request_says_exactly_what_will_run_in_the_thread(harness):
    h = harness("stalled")
    ts, message, buttons = request_resync(h)
    assert message.params["thread_ts"] == ts
    text = json.dumps(message.params["blocks"])
    arn = h.sandbox.task_arn
    for expected in ("TRUNCATE TABLE STAGING.ORDERS_CDC", "TRUNCATE TABLE PUBLIC.ORDERS",
                     f"ReloadTables(ReplicationTaskArn={arn}", "ReloadOption=data-reload", "PUBLIC.ORDERS: 2 rows now",
                     "<@U0ALICE01>", "expires"):
        assert expected in text
    assert set(buttons) == {"Approve", "Reject"} and buttons["Approve"]["value"] == message.params["blocks"][-1][
        "elements"][0]["text"].split("`")[1]
    assert h.sandbox.snowflake.statements == []  # nothing runs on request


@pytest.mark.parametrize("who, expected", [(ALICE, "a second approver has to approve"),
                                           (MALLORY, "Only approvers can approve")])
def test_self_approval_and_non_approvers_are_refused(harness, who, expected):
    h = harness("stalled")
    _, _, buttons = request_resync(h)
    assert expected in click(h, buttons["Approve"], who)
    redeliver_and_run(h, buttons["Approve"]["value"])
    assert h.sandbox.snowflake.statements == [] and h.sandbox.dms_task().reloads == []


def test_second_approver_runs_the_resync_once_to_completion(harness):
    h = harness("stalled")
    ts, message, buttons = request_resync(h)
    assert "queued" in click(h, buttons["Approve"], BOB)
    run_worker(h)
    assert statements(h, "TRUNCATE") == ["TRUNCATE TABLE STAGING.ORDERS_CDC", "TRUNCATE TABLE PUBLIC.ORDERS"]
    assert len(h.sandbox.dms_task().reloads) == 1
    final = h.slack.messages[message.ts].params  # updated in place with chat.update
    text = json.dumps(final["blocks"])
    assert final["text"] == "Re-sync table orders: done" and '"actions"' not in text
    for expected in ("<@U0BOB0002>", "TRUNCATE TABLE PUBLIC.ORDERS: done", "ReloadTables data-reload",
                     "DMS reloaded 2 rows", "rows now: Aurora 2 rows, PUBLIC.ORDERS 2"):
        assert expected in text
    after = h.slack.of("chat.postMessage")[-1].params
    assert after["thread_ts"] == ts and after["blocks"][0]["text"]["text"] == "orders: Healthy"
    trail = [e for e, _ in events(h)]
    assert trail[:4] == ["requested", "approval", "approved", "running"] and trail[-1] == "succeeded"
    # seven steps (the check that DMS can reload first, the COPY of reloaded files Snowpipe skips), each
    # started and done, and the intent before ReloadTables
    assert trail.count("step") == 15
    assert click(h, buttons["Approve"], CAROL).startswith("This request is already succeeded")


def test_concurrent_approvals_on_two_replicas_execute_exactly_once(harness, slack):
    h = harness("stalled")
    _, _, buttons = request_resync(h)
    from syncbot.wiring import wire
    from handlers.app import web_client

    replica = wire(h.bot, client=web_client("xoxb-test", slack.api_url), signing_secret=h.secret,
                   process_before_response=True, poll_s=0.01, sleep=lambda s: None).app
    barrier = threading.Barrier(8)
    answers = []

    def approve(i):
        barrier.wait()
        answers.append(click(h, buttons["Approve"], BOB if i % 2 else CAROL, app=replica if i % 2 else h.app))

    threads = [threading.Thread(target=approve, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert queued(h) == 1  # one job queued, whatever the number of clicks
    run_worker(h)
    assert statements(h, "TRUNCATE") == ["TRUNCATE TABLE STAGING.ORDERS_CDC", "TRUNCATE TABLE PUBLIC.ORDERS"]
    assert len(h.sandbox.dms_task().reloads) == 1
    assert [e for e, _ in events(h)].count("approved") == 1


def test_a_queued_job_delivered_twice_runs_once(harness):
    h = harness("stalled")
    _, _, buttons = request_resync(h)
    click(h, buttons["Approve"], BOB)
    request_id = buttons["Approve"]["value"]
    queue = h.wiring.queues["syncbot-resync"]
    queue.enqueue("bot.remediation.jobs.run_job", request_id)  # a redelivery
    deliveries = queue.jobs
    assert len(deliveries) == 2
    barrier, results = threading.Barrier(2), []

    def perform(job):  # both deliveries run at the same moment, as two workers would run them
        barrier.wait()
        results.append(job.perform())

    threads = [threading.Thread(target=perform, args=(job,)) for job in deliveries]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["busy", "succeeded"]
    assert len(statements(h, "TRUNCATE")) == 2 and len(h.sandbox.dms_task().reloads) == 1


def test_rejected_and_expired_requests_cannot_be_approved(harness):
    h = harness("stalled")
    _, message, buttons = request_resync(h)
    assert "Only approvers can reject" in click(h, buttons["Reject"], MALLORY)
    assert click(h, buttons["Reject"], CAROL) == "Rejected; nothing will run."
    assert "already rejected" in click(h, buttons["Approve"], BOB)
    assert "Rejected by* <@U0CAROL03>" in json.dumps(h.slack.messages[message.ts].params["blocks"])
    redeliver_and_run(h, buttons["Approve"]["value"])
    assert h.sandbox.snowflake.statements == []


def test_expired_request_cannot_be_approved(harness):
    h2 = harness("stalled")
    _, message2, buttons2 = request_resync(h2)
    key = f"syncbot:req:{buttons2['Approve']['value']}"
    h2.redis.hset(key, "expires_at", "1")
    assert "expired before it was approved" in click(h2, buttons2["Approve"], BOB)
    redeliver_and_run(h2, buttons2["Approve"]["value"])
    assert h2.sandbox.snowflake.statements == [] and h2.sandbox.dms_task().reloads == []
    assert h2.slack.messages[message2.ts].params["text"] == "Re-sync table orders: expired"


def test_tampered_or_replayed_approval_changes_nothing(harness):
    h = harness("stalled")
    _, _, buttons = request_resync(h)
    forged = {**buttons["Approve"], "value": "not-a-real-request-id"}
    assert "no longer valid" in click(h, forged, BOB)
    click(h, buttons["Approve"], BOB)
    assert "already" in click(h, buttons["Approve"], BOB)  # the same click again
    run_worker(h)
    assert len(statements(h, "TRUNCATE")) == 2


def test_approval_does_not_carry_over_to_a_changed_plan(harness):
    h = harness("stalled")
    _, _, buttons = request_resync(h)
    # The task is recreated between the request and the approval: same name, another ARN.
    from moto.dms.models import dms_backends
    from syncbot.sandbox.moto_dms import resource_id

    backend = dms_backends["123456789012"]["us-east-1"]
    task = backend.replication_tasks.pop(h.sandbox.task_arn)
    task.arn = task.arn.rsplit(":", 1)[0] + ":" + resource_id()
    backend.replication_tasks[task.arn] = task
    assert "approval does not carry over" in click(h, buttons["Approve"], BOB)
    redeliver_and_run(h, buttons["Approve"]["value"])
    assert h.sandbox.snowflake.statements == [] and task.reloads == []


def test_catalog_can_tighten_but_never_loosen_the_policy(harness):
    from dataclasses import replace

    from bot.models import ActionKind
    from bot.remediation.fixes import FIXES

    h = harness("schema-mismatch")
    access = replace(h.bot.catalog.access, policies={"add_columns": 2, "resync": 1})
    assert FIXES[ActionKind.FIX_COLUMNS].people_required(access) == 2
    assert FIXES[ActionKind.RESYNC].people_required(access) == 2
    h.bot.catalog = replace(h.bot.catalog, access=access)
    ts, buttons = diagnose(h)
    assert "1 more approver(s)" in click(h, buttons["add_columns"], ALICE, message_ts=ts)
    assert statements(h, "ALTER TABLE") == []


def test_redis_down_refuses_fixes_but_diagnosis_still_works(harness, slack):
    import redis as redis_lib

    from dataclasses import replace

    from handlers.app import web_client
    from syncbot.wiring import wire

    h = harness("pipe-paused")
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    dead = redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    bot = replace(h.bot, redis=dead)
    w = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret=h.secret,
             process_before_response=True)
    w.app.dispatch(bolt_request(slash_command_body("orders", ALICE, CHANNEL, slack.response_url()), h.secret))
    message = slack.of("chat.postMessage")[-1].params
    assert message["blocks"][0]["text"]["text"] == "orders: Sync Lagging / Data Missing"
    assert not [b for b in message["blocks"] if b["type"] == "actions"]  # no buttons without Redis
    answer = w.remediation.click("x" * 22, ActionKind_resume(), ALICE, "1.0")
    assert "can't reach the approval store" in answer.text and not answer.ok


def ActionKind_resume():
    from bot.models import ActionKind

    return ActionKind.RESUME_PIPE


def test_audit_command_prints_the_trail_for_a_table(harness, monkeypatch, capsys):
    from syncbot.cli import main

    h = harness("pipe-paused")
    ts, buttons = diagnose(h)
    click(h, buttons["resume_pipe"], ALICE, message_ts=ts)
    run_worker(h)
    monkeypatch.setenv("REDIS_URL", h.redis.connection_pool.connection_kwargs and f"redis://127.0.0.1:6379/{h.redis.connection_pool.connection_kwargs['db']}")
    assert main(["audit", "--table", "orders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[4] for line in lines] == ["succeeded", "step", "step", "running", "approved", "requested"]
    assert all(" orders " in line and "resume_pipe" in line for line in lines)
    assert main(["audit", "--table", "payments"]) == 0
    assert capsys.readouterr().out.strip() == "no audit entries for payments"


def test_undecided_requests_expire_and_lose_their_buttons(harness):
    h = harness("stalled")
    _, message, buttons = request_resync(h)
    assert len(jobs.expire(h.wiring.runtime)) == 0  # not due yet
    h.redis.hset(f"syncbot:req:{buttons['Approve']['value']}", "expires_at", "1")
    assert len(jobs.expire(h.wiring.runtime)) == 1
    assert len(jobs.expire(h.wiring.runtime)) == 0  # once
    final = h.slack.messages[message.ts].params
    assert final["text"] == "Re-sync table orders: expired" and '"actions"' not in json.dumps(final["blocks"])
    assert ("expired", "syncbot") in events(h)


# -- re-sync for any table, cancel, the lock ---------------------------------------------------------

def menu(message):
    return next(e for b in message.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["type"] == "overflow")


def choose(h, overflow, option, user, message_ts, app=None):
    action = {"type": "overflow", "action_id": overflow["action_id"], "block_id": "b", "selected_option": option}
    body = block_actions_body(action, user, CHANNEL, message_ts, h.slack.response_url())
    forms = len(h.slack.of("views.open"))
    assert (app or h.app).dispatch(bolt_request(body, h.secret)).status == 200
    fill_form(app or h.app, h.slack, h.secret, user, REASON, since=forms)
    return h.slack.of("response_url")[-1].params["text"]


def test_a_healthy_table_offers_the_resync_in_its_menu_not_among_the_fixes(harness):
    h = harness("healthy")
    ts, buttons = diagnose(h)
    assert buttons == {}  # no fix buttons for a healthy table
    overflow = menu(h.slack.of("chat.postMessage")[-1])
    [option] = overflow["options"]
    assert option["text"]["text"] == "Re-sync table…"
    assert "1 more approver(s) must approve" in choose(h, overflow, option, ALICE, ts)
    message, approve = approval_message(h)
    assert message.params["thread_ts"] == ts
    forged = {**option, "value": "x" * 22}
    assert "no longer valid" in choose(h, overflow, forged, ALICE, ts)
    assert "Only approvers can run fixes" in choose(h, overflow, option, MALLORY, ts)
    assert len([c for c in h.slack.of("chat.postMessage") if c.params.get("text", "").startswith("Re-sync")]) == 1


def test_resync_command_asks_for_the_same_two_person_request(harness):
    h = harness("healthy")
    h.app.dispatch(bolt_request(slash_command_body(f"resync orders {REASON}", ALICE, CHANNEL, h.slack.response_url()), h.secret))
    message, buttons = approval_message(h)
    assert message.params.get("thread_ts") is None  # the request itself starts the thread
    assert "TRUNCATE TABLE PUBLIC.ORDERS" in json.dumps(message.params["blocks"])
    assert "a second approver" in click(h, buttons["Approve"], ALICE, message_ts=message.ts)
    click(h, buttons["Approve"], BOB, message_ts=message.ts)
    run_worker(h)
    assert h.slack.messages[message.ts].params["text"] == "Re-sync table orders: done"
    assert len(h.sandbox.dms_task().reloads) == 1


@pytest.mark.parametrize("text, expected", [("resync nosuchtable", "I don't know a table called `nosuchtable`"),
                                            ("resync", "`/sync-status resync` takes a table name and why.")])
def test_resync_command_refuses_bad_input_and_changes_nothing(harness, text, expected):
    h = harness("healthy")
    response = h.app.dispatch(bolt_request(slash_command_body(text, ALICE, CHANNEL, h.slack.response_url()), h.secret))
    assert expected in json.loads(response.body)["text"]
    assert h.slack.of("chat.postMessage") == [] and events(h) == []


def test_an_approved_resync_can_be_cancelled_until_it_starts(harness):
    h = harness("stalled")
    _, message, buttons = request_resync(h)
    click(h, buttons["Approve"], BOB)
    drawn = h.slack.messages[message.ts].params
    cancel = next(e for b in drawn["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["text"]["text"] == "Cancel")
    assert "Only approvers can cancel" in click(h, cancel, MALLORY)
    assert click(h, cancel, CAROL) == "Cancelled; nothing ran."
    run_worker(h)  # the queued job finds the request cancelled
    assert h.sandbox.snowflake.statements == [] and h.sandbox.dms_task().reloads == []
    assert h.slack.messages[message.ts].params["text"] == "Re-sync table orders: cancelled"
    assert ("cancelled", CAROL) in events(h)


def test_a_quick_fix_is_refused_while_a_resync_holds_the_table(harness):
    h = harness("stalled")
    _, _, buttons = request_resync(h)
    click(h, buttons["Approve"], BOB)
    request_id = buttons["Approve"]["value"]
    # A worker has claimed the re-sync (and with it the table's lock) and is in its first step.
    claim = h.wiring.approvals.claim(request_id, "orders", "worker-elsewhere", 60, 600)
    assert claim.result.value == "claimed"
    ts, fixes = diagnose(h)
    answer = click(h, fixes["restart_task"], ALICE, message_ts=ts)
    assert f"Another fix (request {request_id}) is running on `orders`" in answer
    run_worker(h)
    assert h.sandbox.dms_task().status == "running" and statements(h, "TRUNCATE") == []


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
