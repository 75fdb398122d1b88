"""Two-person requests end to end (bot/remediation/approvals.py and its Lua scripts on real Redis):
who may approve, exactly once across replicas and redeliveries, tampering, changed plans, expiry, the
audit trail."""
import json
import threading

import pytest
from clicks import (ALICE, BOB, CAROL, CHANNEL, MALLORY, click, diagnose, events, queued, redeliver_and_run,
                    request_resync, run_worker, statements)

from bot.remediation import jobs
from syncbot.sandbox.slack import bolt_request, slash_command_body


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
