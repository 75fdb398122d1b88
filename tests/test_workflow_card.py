"""Owners and the incident card through Bolt with signed requests: the first annotation of a broken
table is the card (also shown in the channel), mentions the owners once per incident, and chat.update
keeps it current through a fix to "resolved", which only a fresh Healthy diagnosis may say."""
import json
import re

import pytest

from bot.catalog import CatalogError, parse_catalog
from workflow_helpers import alert, annotation_of, blocks_text, press_in_alerts, workflow_harness
from syncbot.sandbox.slack import bolt_request, fill_form, slash_command_body

ALICE = "U0ALICE01"
MENTIONS = "<!subteam^S0DATAENG>, <@U0CAROL03>"


@pytest.fixture
def wf(make_sandbox, redis, slack):
    return lambda scenario, window=15: workflow_harness(make_sandbox, redis, slack, scenario, window)


def card_states(h, card):
    """What the card's state line said at each chat.update, in order."""
    states = []
    for call in h.slack.of("chat.update"):
        if call.params.get("ts") == card.ts:
            blocks = call.params["blocks"]
            blocks = json.loads(blocks) if isinstance(blocks, str) else blocks
            states += [b["text"]["text"] for b in blocks if b.get("block_id") == "syncbot.card.state"]
    return states


def fix_button(message, kind):
    return next(e for b in message.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e.get("action_id") == f"syncbot.fix.{kind}")


def test_the_first_annotation_is_the_card_and_mentions_the_owners_once_per_incident(wf):
    h = wf("pipe-paused", window=0)
    card = annotation_of(h, alert(h))
    assert card.params.get("reply_broadcast") is True  # shown in the channel, not only in the thread
    state = card.params["blocks"][1]
    assert state["block_id"] == "syncbot.card.state" and "Incident open" in state["text"]["text"]
    assert MENTIONS in state["text"]["text"]
    again = annotation_of(h, alert(h))  # the same incident: named, not mentioned again, and not a card
    text = blocks_text(again.params)
    assert "<!subteam^" not in text and "<@U0CAROL03>" not in text and "`S0DATAENG`" in text
    assert not again.params.get("reply_broadcast")


def test_a_diagnosis_and_the_fleet_view_name_a_broken_tables_owners(wf):
    h = wf("pipe-paused")
    h.app.dispatch(bolt_request(slash_command_body("orders", ALICE, "C0INCIDNT", h.slack.response_url()), h.secret))
    assert f"*Owners:* {MENTIONS}" in blocks_text(h.slack.of("chat.postMessage")[-1].params)
    h.app.dispatch(bolt_request(slash_command_body("", ALICE, "C0INCIDNT", h.slack.response_url()), h.secret))
    fleet = blocks_text(h.slack.of("chat.postMessage")[-1].params)
    assert f"*orders* — Sync Lagging / Data Missing — downstream (Snowpipe/merge) — {MENTIONS}" in fleet


def test_the_card_follows_a_fix_to_resolved(wf):
    h = wf("stalled")
    card = annotation_of(h, alert(h))
    forms = len(h.slack.of("views.open"))
    press_in_alerts(h, fix_button(card, "resync"), ALICE, card)
    fill_form(h.app, h.slack, h.secret, ALICE, "no CDC file for three hours", since=forms)
    request = next(c for c in h.slack.of("chat.postMessage") if c.params.get("text", "").startswith("Re-sync table"))
    approve = next(e for b in request.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                   if e["text"]["text"] == "Approve")
    press_in_alerts(h, approve, "U0BOB0002", request)
    h.wiring.worker().work(burst=True)
    states = card_states(h, card)
    assert states[0].startswith(":hourglass_flowing_sand: Re-sync table requested (asked by <@U0ALICE01>)")
    assert any(s.startswith(":white_check_mark: Re-sync table approved") for s in states)
    running = [s for s in states if s.startswith(":gear: fix running: Re-sync table (asked by <@U0ALICE01>), step ")]
    steps = [tuple(map(int, re.search(r"step (\d+) of (\d+)", s).groups())) for s in running]
    total = steps[0][1]  # the plan's own length: the re-sync's steps are its module's, not this test's
    assert total >= 6 and all(of == total for _, of in steps)
    numbers = [n for n, _ in steps]
    assert numbers == sorted(numbers) and set(numbers) == set(range(1, total + 1))  # every step drawn, in order
    assert "Resolved* at " in states[-1] and "verified healthy by a fresh diagnosis" in states[-1]
    final = h.slack.messages[card.ts].params["blocks"]
    assert not [b for b in final if b["type"] == "actions" and b.get("block_id") == "syncbot.fixes"]  # buttons gone
    assert h.bot.redis.get("syncbot:incident:orders") is None  # the next alert opens a new incident


def test_a_fix_that_succeeds_on_a_table_still_broken_does_not_resolve_the_card(wf):
    h = wf("pipe-paused")
    card = annotation_of(h, alert(h))
    press_in_alerts(h, fix_button(card, "resume_pipe"), ALICE, card)
    h.sandbox.dms_client.stop_replication_task(ReplicationTaskArn=h.sandbox.task_arn)  # broken elsewhere too
    h.wiring.worker().work(burst=True)
    assert h.sandbox.snowflake.pipes["STAGING.ORDERS_PIPE"]["executionState"] == "RUNNING"  # the fix succeeded
    last = card_states(h, card)[-1]
    assert "Resume pipe succeeded, but a fresh diagnosis" in last and "not resolved" in last
    assert "Resolved" not in last
    assert h.bot.redis.get("syncbot:incident:orders") is not None


def test_a_recovery_still_broken_leaves_the_card_open(wf):
    h = wf("pipe-paused")
    card = annotation_of(h, alert(h))
    alert(h, "Resolved: PUBLIC.ORDERS is fresh again")  # the alerting tool says so; a fresh diagnosis does not
    assert card_states(h, card) == [] and h.bot.redis.get("syncbot:incident:orders") is not None


@pytest.mark.parametrize("owners, line", [('["U0CAROL03", "carol"]', 7), ('["C0CHANNEL1"]', 7), ('"S0DATA"', 7)])
def test_malformed_owners_stop_start_up_with_the_line_named(owners, line):
    toml = f"""[defaults]
dms_task = "t"

[[tables]]
name = "orders"
source = "public.orders"
owners = {owners}
"""
    with pytest.raises(CatalogError, match=f"line {line}"):
        parse_catalog(toml)
    assert parse_catalog(toml.replace(f"owners = {owners}", 'owners = ["S0DATA", "W0ENTERPR"]')).tables[0].owners \
        == ("S0DATA", "W0ENTERPR")
    assert parse_catalog('[defaults]\nowners = ["U0CAROL03"]\n[[tables]]\nname = "o"\nsource = "a.b"\n').tables[0] \
        .owners == ("U0CAROL03",)
