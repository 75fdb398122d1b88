"""Channels the bot is not a member of: chat.postMessage answers not_in_channel (FakeSlack, as Slack
documents for chat.postMessage), so every answer goes through the interaction's response_url, and
after a fix has run nobody is told that nothing changed."""
import json
import logging
import time
from pathlib import Path


from bot.services import assemble
from handlers.app import web_client
from syncbot.wiring import wire

from syncbot.sandbox.slack import (
    block_actions_body, bolt_request, event_callback_body, event_request, fill_form, slash_command_body,
)

CHANNEL = "C0OUTSIDE"
ALICE, BOB = "U0ALICE01", "U0BOB0002"


def diagnose_outside(h, table="orders"):
    h.slack.not_in_channels.add(CHANNEL)
    h.app.dispatch(bolt_request(slash_command_body(table, ALICE, CHANNEL, h.slack.response_url()), h.secret))
    [message] = [c for c in h.slack.of("response_url") if c.params.get("response_type") == "in_channel"]
    return {e["action_id"].rsplit(".", 1)[-1]: e for b in message.params["blocks"] if b["type"] == "actions"
            for e in b["elements"]}


def press(h, button, user, message_ts="1.000001", status=200):
    action = {"action_id": button["action_id"], "block_id": "b", "value": button["value"], "text": button["text"]}
    before, forms = len(h.slack.of("response_url")), len(h.slack.of("views.open"))
    response = h.app.dispatch(bolt_request(block_actions_body(action, user, CHANNEL, message_ts,
                                                              h.slack.response_url()), h.secret))
    assert response.status == status
    fill_form(h.app, h.slack, h.secret, user, "rows lost overnight", since=forms)  # a two-person fix asks why
    return h.slack.of("response_url")[before:]


def run_worker(h):
    h.wiring.worker().work(burst=True)


def test_a_fix_pressed_outside_runs_and_everyone_is_told_through_response_url(harness):
    h = harness("pipe-paused")
    buttons = diagnose_outside(h)
    [private] = press(h, buttons["resume_pipe"], ALICE)
    assert "Sorry" not in private.params["text"] and "Nothing else was changed" not in private.params["text"]
    run_worker(h)  # the fix runs in the worker, which reports where the bot cannot post through the click's URL
    assert h.sandbox.snowflake.pipes["STAGING.ORDERS_PIPE"]["executionState"] == "RUNNING"  # production changed
    public = [c for c in h.slack.of("response_url") if c.params.get("response_type") == "in_channel"
              and "Resume pipe" in c.params.get("text", "")]
    assert len(public) == 1 and "ran *Resume pipe* on `orders`" in public[0].params["text"]
    assert not h.slack.messages  # chat.postMessage never got through: the bot is not a member


def test_an_approval_request_outside_is_posted_through_response_url_with_its_buttons(harness):
    h = harness("stalled")
    buttons = diagnose_outside(h)
    answers = press(h, buttons["resync"], ALICE)
    [request] = [a for a in answers if a.params.get("response_type") == "in_channel"]
    assert request.params["text"].startswith("Re-sync table orders")
    approve = next(e for b in request.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["text"]["text"] == "Approve")
    assert approve["confirm"]["text"]["type"] == "plain_text"  # Slack's confirm dialog takes plain_text only
    [private] = [a for a in answers if a.params.get("response_type") == "ephemeral"]
    assert "Approval requested" in private.params["text"] and "`/invite`" in private.params["text"]
    # The second approver's click from that message is accepted (the re-sync is queued for the worker).
    [answer] = press(h, approve, BOB)
    assert "Sorry" not in answer.params["text"] and sum(len(q) for q in h.wiring.queues.values()) == 1
    assert "cannot be drawn here" in answer.params["text"]  # not "progress follows in the thread" alone


def test_an_unexpected_error_after_a_click_does_not_claim_nothing_changed(harness, monkeypatch):
    h = harness("pipe-paused")
    buttons = diagnose_outside(h)

    def ran_then_failed(*args, **kwargs):
        raise RuntimeError("after the side effect")

    monkeypatch.setattr(h.wiring.remediation, "click", ran_then_failed)
    [answer] = press(h, buttons["resume_pipe"], ALICE, status=500)  # Bolt's answer to a listener that raised
    assert "Sorry" in answer.params["text"] and "Nothing" not in answer.params["text"]
    assert "may already have run" in answer.params["text"]


def test_an_alert_in_a_channel_the_bot_has_left_is_acknowledged_and_logged(make_sandbox, redis, slack, caplog):
    """Slack delivers message events only from channels the bot is in; one that arrives as the bot is
    removed gets not_in_channel on its reply. The delivery is acknowledged first (production's
    process_before_response=False, so Slack does not retry), the failure is a warning that says to
    invite the bot, and nothing is posted anywhere else. The event is the recorded AWS Chatbot alarm."""
    sandbox = make_sandbox("stalled", real_aurora=False)
    bot = assemble(sandbox.catalog, sandbox.gateways, redis)
    app = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret="s3cret").app
    slack.not_in_channels.add("C0ALERTS1")
    text = (Path(__file__).parent / "payloads" / "chatbot_cloudwatch_alarm.json").read_text()
    event = json.loads(text.replace("Q7XKZ3VBNJ2M4LPRT6WYHC5DSA", sandbox.task_arn.rsplit(":", 1)[-1]))
    with caplog.at_level(logging.WARNING):
        assert app.dispatch(event_request(event_callback_body(event), "s3cret")).status == 200
        for _ in range(200):  # the listener runs after the ack
            if any("invite the bot" in r.getMessage() for r in caplog.records):
                break
            time.sleep(0.05)
    assert [r.levelname for r in caplog.records if "invite the bot" in r.getMessage()] == ["WARNING"]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]
    assert slack.of("chat.postMessage") and not slack.messages and not slack.of("response_url")
