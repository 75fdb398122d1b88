"""The App Home through Bolt with signed requests: app_home_opened publishes (views.publish) each
person's home from what is stored, without diagnosing anything; Approve there is the channel's own
transition (self-approval, plan and expiry checks included); only pending requests get the buttons."""
import json

import pytest

from bot.remediation.approvals import State
from bot.snoozes import Snoozes
from syncbot.sandbox.slack import bolt_request, event_callback_body, event_request, home_action_body, \
    slash_command_body
from workflow_helpers import workflow_harness

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"
CHANNEL = "C0INCIDNT"


@pytest.fixture
def h(make_sandbox, redis, slack):
    return workflow_harness(make_sandbox, redis, slack, "pipe-paused")


def open_home(h, user):
    event = {"type": "app_home_opened", "user": user, "channel": "D0HOME", "tab": "home",
             "event_ts": "1.000001"}
    assert h.app.dispatch(event_request(event_callback_body(event), h.secret)).status == 200
    return h.slack.homes[user]


def approve_buttons(home):
    return [e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"]
            if e["action_id"] in ("syncbot.approve", "syncbot.reject")]


def press_home(h, button, user):
    action = {"action_id": button["action_id"], "block_id": "b", "value": button["value"], "text": button["text"]}
    assert h.app.dispatch(bolt_request(home_action_body(action, user), h.secret)).status == 200


def ask_resync(h, user=ALICE):
    body = slash_command_body("resync orders the 04:00 load skipped a file", user, CHANNEL, h.slack.response_url())
    h.app.dispatch(bolt_request(body, h.secret))
    [request_id] = h.wiring.approvals.ids()
    return request_id


def private_to(h, user):
    return [c.params["text"] for c in h.slack.of("chat.postEphemeral") if c.params.get("user") == user]


def test_a_pending_approval_is_approved_from_the_home(h):
    request_id = ask_resync(h)
    home = open_home(h, BOB)
    assert h.slack.of("views.publish")[-1].params["user_id"] == BOB
    [approve, reject] = approve_buttons(home)
    assert approve["value"] == reject["value"] == request_id
    assert "the 04:00 load skipped a file" in json.dumps(home["blocks"], ensure_ascii=False)
    press_home(h, approve, BOB)
    assert h.wiring.approvals.get(request_id).state is State.APPROVED
    assert any("queued" in t for t in private_to(h, BOB))  # said privately in the request's channel
    assert approve_buttons(h.slack.homes[BOB]) == []  # drawn again: nothing waits for Bob now
    assert approve_buttons(open_home(h, CAROL)) == []  # only pending requests get the buttons


def test_a_self_approval_from_the_home_is_refused(h):
    request_id = ask_resync(h)
    home = open_home(h, ALICE)
    assert approve_buttons(home) == []  # her own request is listed, not offered
    assert "Your open requests" in json.dumps(home["blocks"], ensure_ascii=False) and "Re-sync table" in json.dumps(home["blocks"], ensure_ascii=False)
    forged = {"action_id": "syncbot.approve", "value": request_id, "text": {"type": "plain_text", "text": "Approve"}}
    press_home(h, forged, ALICE)  # a button from an old Home, or a crafted click: the Lua script decides
    assert h.wiring.approvals.get(request_id).state is State.REQUESTED
    assert any("a second approver has to approve it" in t for t in private_to(h, ALICE))


def test_the_home_shows_the_last_fleet_round_without_diagnosing(h, slack, monkeypatch):
    slack.usergroups["S0DATAENG"] = [BOB]  # Bob owns orders through the usergroup
    home = json.dumps(open_home(h, BOB)["blocks"], ensure_ascii=False)
    assert "No fleet round recorded yet" in home
    h.app.dispatch(bolt_request(slash_command_body("", ALICE, CHANNEL, h.slack.response_url()), h.secret))
    monkeypatch.setattr(h.bot.diagnoser, "diagnose_many", lambda *a, **k: pytest.fail("the Home diagnosed"))
    home = json.dumps(open_home(h, BOB)["blocks"], ensure_ascii=False)
    assert "*orders* — Sync Lagging / Data Missing" in home and "<!subteam^S0DATAENG>" in home
    assert "From the last fleet round" in home and "just now" in home and "opening this Home runs no diagnosis" in home
    assert "<@U0CAROL03> · _yours_" in home
    assert "_yours_" not in json.dumps(open_home(h, ALICE)["blocks"])


def test_a_snooze_is_listed_and_ended_from_the_home(h):
    Snoozes(h.redis).snooze("orders", CAROL, 4e9)
    home = open_home(h, BOB)
    [end] = [b["accessory"] for b in home["blocks"] if b.get("accessory", {}).get("action_id") == "syncbot.unsnooze"]
    press_home(h, end, BOB)
    assert Snoozes(h.redis).get("orders") is None
    assert "No table is snoozed" in json.dumps(h.slack.homes[BOB]["blocks"])
