"""A reason for every two-person fix, through Bolt's own request path with signed requests: the
button opens a form (views.open with the click's trigger_id) only once the open-request pointer has
had its say; the submission (view_submission) refuses an empty or long reason on the field; the
approval card says who asked, why, and who decided; the requester gets direct messages."""
import json
import urllib.parse

from bot.models import ActionKind
from bot.remediation import audit
from bot.remediation.service import REASON_MAX
from handlers.ids import ViewId
from syncbot.sandbox.slack import block_actions_body, bolt_request, slash_command_body, submit_view
from clicks import ALICE, BOB, CHANNEL, diagnose, run_worker
from clicks import click as click_and_answer

REASON = "orders lost rows overnight: the 04:00 load skipped a file"


def press(h, button, user, ts):
    """A click only: what the form does is the test's to decide."""
    action = {"action_id": button["action_id"], "block_id": "b", "value": button["value"], "text": button["text"]}
    response = h.app.dispatch(bolt_request(block_actions_body(action, user, CHANNEL, ts, h.slack.response_url()),
                                           h.secret))
    assert response.status == 200


def form(h):
    call = h.slack.of("views.open")[-1]
    return call.params, json.loads(call.params["view"]) if isinstance(call.params["view"], str) else call.params["view"]


def submit(h, view, text, user=ALICE):
    response = submit_view(h.app, h.secret, view, {ViewId.REASON_BLOCK: {ViewId.REASON_INPUT: text}}, user)
    assert response.status == 200
    return json.loads(response.body) if response.body else {}


def requests(h):
    return [k for k in h.redis.scan_iter("syncbot:req:*") if not k.endswith(b":people")]


def cards(h):
    return [c for c in h.slack.of("chat.postMessage") if c.params.get("text", "").startswith("Re-sync table")]


def dms(h, user):
    """Direct messages to `user`: chat.postMessage in the DM channel conversations.open gave."""
    return [c.params["text"] for c in h.slack.of("chat.postMessage") if c.params.get("channel") == "D" + user[1:]]


def test_the_button_opens_the_form_and_an_empty_or_long_reason_is_refused_on_the_field(harness):
    h = harness("stalled")
    ts, buttons = diagnose(h)
    press(h, buttons["resync"], ALICE, ts)
    params, view = form(h)
    assert params["trigger_id"]  # the click's own trigger
    assert view["callback_id"] == ViewId.REASON and "needs a second person" in json.dumps(view["blocks"])
    assert requests(h) == [] and cards(h) == []  # nothing made before the reason
    for typed in ("", "   ", "x" * (REASON_MAX + 1)):
        answer = submit(h, view, typed)
        assert answer["response_action"] == "errors" and ViewId.REASON_BLOCK in answer["errors"]
    assert requests(h) == [] and cards(h) == []
    assert submit(h, view, REASON) == {}  # accepted: the form closes
    [card] = cards(h)
    text = json.dumps(card.params["blocks"])
    assert f"*Requested by* <@{ALICE}>" in text and f"*Why:* {REASON}" in text
    assert card.params["thread_ts"] == ts
    [requested] = [e for e in audit.read(h.redis, "orders") if e.event == "requested"]
    assert requested.detail == REASON and requested.user == ALICE
    private = h.slack.of("response_url")[-1].params
    assert private["response_type"] == "ephemeral" and "1 more approver(s) must approve" in private["text"]


def test_an_open_request_is_pointed_to_before_any_form_opens(harness):
    h = harness("stalled")
    ts, buttons = diagnose(h)
    click_and_answer(h, buttons["resync"], ALICE, message_ts=ts)  # asked, with a reason
    forms = len(h.slack.of("views.open"))
    press(h, buttons["resync"], BOB, ts)
    assert len(h.slack.of("views.open")) == forms  # no form: the request is open already
    assert "is already asked for" in h.slack.of("response_url")[-1].params["text"]
    assert len(requests(h)) == 1


def test_the_command_takes_the_reason_inline_or_opens_the_form(harness):
    h = harness("healthy")
    body = slash_command_body("resync orders", ALICE, CHANNEL, h.slack.response_url())
    assert h.app.dispatch(bolt_request(body, h.secret)).status == 200
    params, view = form(h)
    assert params["trigger_id"] == urllib.parse.parse_qs(body)["trigger_id"][0] and requests(h) == []
    body = slash_command_body(f"resync orders {REASON}", ALICE, CHANNEL, h.slack.response_url())
    h.app.dispatch(bolt_request(body, h.secret))
    [card] = cards(h)
    assert f"*Why:* {REASON}" in json.dumps(card.params["blocks"])


def test_the_core_refuses_a_two_person_fix_without_a_reason(harness):
    h = harness("stalled")
    remediation = h.wiring.remediation
    asked = remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL)
    assert not asked.ok and asked.needs_reason is not None and asked.needs_reason.table == "orders"
    assert "at most" in remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "x" * 501).text
    assert requests(h) == []
    assert remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, REASON).ok
    quick = remediation.request("orders", ActionKind.RESTART_TASK, ALICE, CHANNEL)  # one person: no reason needed
    assert quick.needs_reason is None


def test_the_card_says_who_approved_and_the_requester_is_told_each_step(harness):
    h = harness("stalled")
    ts, buttons = diagnose(h)
    click_and_answer(h, buttons["resync"], ALICE, message_ts=ts)
    [card] = cards(h)
    approve = next(e for b in card.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["text"]["text"] == "Approve")
    assert dms(h, ALICE) == []  # asking is not news to the asker
    click_and_answer(h, approve, BOB, message_ts=card.ts)
    drawn = json.dumps(h.slack.messages[card.ts].params["blocks"])
    assert f"*Approved by* <@{BOB}> at " in drawn and f"*Why:* {REASON[:20]}" in drawn.replace("\\u2019", "'")
    [approved] = dms(h, ALICE)
    assert f"approved by <@{BOB}>" in approved and "Re-sync table" in approved
    assert f"https://sandbox.slack.com/archives/{CHANNEL}/p{card.ts.replace('.', '')}" in approved
    run_worker(h)
    news = dms(h, ALICE)
    assert len(news) == 2 and "succeeded" in news[1]
    run_worker(h)
    assert len(dms(h, ALICE)) == 2  # once per event, whatever redraws the card


def test_a_rejection_is_said_on_the_card_and_to_the_requester(harness):
    h = harness("stalled")
    ts, buttons = diagnose(h)
    click_and_answer(h, buttons["resync"], ALICE, message_ts=ts)
    [card] = cards(h)
    reject = next(e for b in card.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                  if e["text"]["text"] == "Reject")
    click_and_answer(h, reject, BOB, message_ts=card.ts)
    assert f"*Rejected by* <@{BOB}>" in json.dumps(h.slack.messages[card.ts].params["blocks"])
    [rejected] = dms(h, ALICE)
    assert f"rejected by <@{BOB}>" in rejected


def test_an_expired_request_is_said_to_the_requester(harness):
    from bot.remediation import jobs

    h = harness("stalled")
    ts, buttons = diagnose(h)
    click_and_answer(h, buttons["resync"], ALICE, message_ts=ts)
    [request_id] = [k.decode().rsplit(":", 1)[-1] for k in requests(h)]
    h.redis.hset(f"syncbot:req:{request_id}", "expires_at", "1")
    assert len(jobs.expire(h.wiring.runtime)) == 1
    [expired] = dms(h, ALICE)
    assert "Re-sync table" in expired and "expired" in expired


def test_the_tests_slack_refuses_forms_slack_refuses(slack):
    """views.open as Slack answers it: a trigger is needed, a form with an input needs a submit button,
    a title is at most 24 characters (https://docs.slack.dev/reference/methods/views.open)."""
    import pytest
    from slack_sdk.errors import SlackApiError

    from handlers.app import web_client

    client = web_client("xoxb-test", slack.api_url)
    field = {"type": "input", "block_id": "b", "label": {"type": "plain_text", "text": "Why?"},
             "element": {"type": "plain_text_input", "action_id": "a"}}
    good = {"type": "modal", "title": {"type": "plain_text", "text": "Re-sync table"},
            "submit": {"type": "plain_text", "text": "Ask"}, "blocks": [field]}
    assert client.views_open(trigger_id="1.2.3", view=good)["ok"]
    for trigger, view, error in (("", good, "invalid_trigger_id"),
                                 ("1.2.3", {k: v for k, v in good.items() if k != "submit"}, "invalid_arguments"),
                                 ("1.2.3", {**good, "title": {"type": "plain_text", "text": "x" * 25}},
                                  "invalid_arguments")):
        with pytest.raises(SlackApiError) as refused:
            client.views_open(trigger_id=trigger, view=view)
        assert refused.value.response["error"] == error
