"""The re-sync for any table: from the menu and the command, cancelled before it starts, and the table's
lock against quick fixes while it runs."""
import json

import pytest
from clicks import (ALICE, BOB, CAROL, CHANNEL, MALLORY, REASON, approval_message, choose, click, diagnose,
                    events, menu, request_resync, run_worker, statements)

from syncbot.sandbox.slack import bolt_request, slash_command_body


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
