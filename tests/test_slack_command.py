"""/sync-status and fix buttons through Bolt's own request path, with correctly signed requests;
what reached Slack is read back from the local Web API stand-in."""
import json
import time

import pytest

from bot.models import ActionKind
from handlers.blocks import MAX_BLOCKS, SECTION_LIMIT, fleet_blocks
from syncbot.sandbox.seams import backend
from syncbot.sandbox.slack import block_actions_body, bolt_request, signed_headers, slash_command_body

CHANNEL = "C0INCIDNT"


def command(h, text, user="U0ALICE01", channel=CHANNEL):
    body = slash_command_body(text, user, channel, h.slack.response_url())
    response = h.app.dispatch(bolt_request(body, h.secret))
    ack = json.loads(response.body) if response.body.startswith("{") else {}
    return response, ack


def posted(h):
    return h.slack.of("chat.postMessage")


def header(message):
    return message.params["blocks"][0]["text"]["text"]


def buttons(message):
    return [e for b in message.params["blocks"] if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]


@pytest.mark.parametrize("scenario, title, where", [
    ("healthy", "orders: Healthy", "none"),
    ("dms-failed", "orders: Sync Lagging / Data Missing", "upstream (Aurora/DMS)"),
    ("stalled", "orders: DMS Task Stalled", "upstream (Aurora/DMS)"),
    ("schema-mismatch", "orders: Schema Mismatch", "downstream (Snowpipe/merge)"),
    ("pipe-paused", "orders: Sync Lagging / Data Missing", "downstream (Snowpipe/merge)"),
])
def test_sync_status_posts_the_verdict_and_evidence(harness, scenario, title, where):
    h = harness(scenario)
    response, ack = command(h, "orders")
    assert response.status == 200 and ack["response_type"] == "ephemeral" and "orders" in ack["text"]
    [message] = posted(h)
    assert message.params["channel"] == CHANNEL and header(message) == title
    verdict = message.params["blocks"][1]["text"]["text"]
    assert f"*Where:* {where}" in verdict and "*Runbook:*" in verdict
    text = json.dumps(message.params["blocks"])
    for check in ("DMS task", "CDC latency", "CDC files in S3", "Snowpipe", "Freshness", "Schema drift",
                  "Replication slot"):
        assert f"*{check}*" in text
    assert message.params["text"].startswith(title)  # notification fallback


def test_buttons_carry_only_an_opaque_id(harness):
    h = harness("schema-mismatch")
    command(h, "orders")
    found = buttons(posted(h)[0])
    assert [b["action_id"] for b in found] == ["syncbot.fix.add_columns", "syncbot.fix.pause_pipe",
                                               "syncbot.fix.retry_files"]
    for button in found:
        assert "ALTER" not in button["value"] and "orders" not in button["value"].lower()
        offer = h.bot.offers.get(button["value"])
        assert offer.table == "orders" and offer.channel == CHANNEL
        assert "confirm" in button


def click(h, button, user="U0ALICE01"):
    action = {"action_id": button["action_id"], "block_id": "syncbot.fixes", "value": button["value"],
              "text": button["text"]}
    body = block_actions_body(action, user, CHANNEL, "1.000001", h.slack.response_url())
    return h.app.dispatch(bolt_request(body, h.secret))


def test_button_click_is_acknowledged(harness):
    h = harness("pipe-paused")
    command(h, "orders")
    [resume] = buttons(posted(h)[0])
    assert click(h, resume).status == 200
    reply = h.slack.of("response_url")[-1].params
    assert reply["response_type"] == "ephemeral" and "Resume pipe" in reply["text"]


@pytest.mark.parametrize("tamper", [
    lambda b: {**b, "value": "forged-value-123456"},
    lambda b: {**b, "value": b["value"] + "x"},
    lambda b: {**b, "action_id": "syncbot.fix.resync"},  # a real id, offered for another action
])
def test_tampered_button_is_refused_politely(harness, tamper):
    h = harness("pipe-paused")
    command(h, "orders")
    [resume] = buttons(posted(h)[0])
    assert click(h, tamper(resume)).status == 200
    reply = h.slack.of("response_url")[-1].params
    assert "no longer valid" in reply["text"] and reply["response_type"] == "ephemeral"


def test_no_argument_lists_every_table_worst_first(harness):
    h = harness("pipe-paused")
    command(h, "")
    [message] = posted(h)
    lines = message.params["blocks"][1]["text"]["text"].splitlines()
    assert [line.split("*")[1] for line in lines] == ["orders", "customers", "payments"]
    assert "Sync Lagging / Data Missing" in lines[0] and "Healthy" in lines[1]


def test_help(harness):
    h = harness()
    _, ack = command(h, "help")
    assert "/sync-status <table>" in ack["text"] and not posted(h)


@pytest.mark.parametrize("typed", ["ordrs", "orders;DROP", "orders'--", "<!channel>", "public.orders%27"])
def test_unknown_or_hostile_table_gets_an_ephemeral_answer_and_touches_nothing(harness, typed):
    h = harness()
    calls_before = sum(h.sandbox.calls.values())
    _, ack = command(h, typed)
    assert ack["response_type"] == "ephemeral" and "I don't know a table called" in ack["text"]
    assert "<!channel>" not in ack["text"]
    assert not posted(h)
    assert sum(h.sandbox.calls.values()) == calls_before


def test_close_matches_are_suggested(harness):
    _, ack = command(harness(), "ordrs")
    assert "Did you mean `orders`?" in ack["text"]


def test_malformed_arguments_get_usage(harness):
    h = harness()
    _, ack = command(h, "orders customers")
    assert "takes one table name" in ack["text"] and not posted(h)


def test_forged_signature_is_rejected_and_nothing_happens(harness):
    h = harness()
    body = slash_command_body("orders", "U0ALICE01", CHANNEL, h.slack.response_url())
    from slack_bolt.request import BoltRequest

    response = h.app.dispatch(BoltRequest(body=body, headers=signed_headers(body, "not-the-secret")))
    assert response.status == 401 and not posted(h) and backend(h.sandbox.calls, "snowflake") == 0


def test_replayed_old_request_is_rejected(harness):
    h = harness()
    body = slash_command_body("orders", "U0ALICE01", CHANNEL, h.slack.response_url())
    response = h.app.dispatch(bolt_request(body, h.secret, timestamp=time.time() - 600))
    assert response.status == 401 and not posted(h)


def test_not_in_channel_falls_back_to_response_url(harness):
    h = harness("healthy")
    h.slack.not_in_channels.add("C0PRIVATE")
    command(h, "orders", channel="C0PRIVATE")
    reply = h.slack.of("response_url")[-1].params
    assert reply["response_type"] == "in_channel" and reply["blocks"][0]["text"]["text"] == "orders: Healthy"


def test_fleet_message_stays_within_slack_limits(harness):
    h = harness("pipe-paused")
    diag = h.bot.diagnose(h.bot.find("orders"))
    from dataclasses import replace

    many = [replace(diag, table=f"table_{i:03d}_with_a_long_name") for i in range(500)]
    blocks = [b.to_dict() for b in fleet_blocks(many)]
    assert len(blocks) <= MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks if b["type"] == "section")
    assert "more tables not shown" in blocks[-1]["elements"][0]["text"]


def test_every_fix_kind_has_its_module():
    from bot.remediation.fixes import FIXES

    assert set(FIXES) == set(ActionKind) and all(kind is fix.kind for kind, fix in FIXES.items())


def test_the_answer_waits_for_the_hold_once_the_checks_are_in(harness):
    """The web glue's acknowledgement hold (AcksFirst.after_burst in a server): the diagnosis has run,
    and its message is rendered and posted only once the hold lets it go."""
    import threading

    from slack_bolt import App

    from handlers import commands

    h = harness("healthy")
    reached, release = threading.Event(), threading.Event()
    posted_when_held = []

    def hold():
        posted_when_held.append(len(h.slack.of("chat.postMessage")))
        reached.set()
        release.wait(10)

    app = App(signing_secret=h.secret, client=h.wiring.client, process_before_response=True)
    commands.register(app, h.bot, h.wiring.remediation, h.wiring.reporter, hold)
    body = slash_command_body("orders", "U0ALICE01", "C0INCIDNT", h.slack.response_url())
    asking = threading.Thread(target=lambda: app.dispatch(bolt_request(body, h.secret)))
    asking.start()
    assert reached.wait(20)
    assert posted_when_held == [0] and not h.slack.of("chat.postMessage")
    release.set()
    asking.join(20)
    assert h.slack.of("chat.postMessage")[-1].params["text"].startswith("orders")
