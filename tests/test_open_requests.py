"""One open request per table and fix, as people meet it in Slack: signed requests through Bolt on two
replicas (each its own SyncBot and Redis client), the sandbox pipeline behind them. A second ask makes
nothing and is answered privately with who asked, when, how it stands and a link to the request's
message (chat.getPermalink); the audit trail records the refused ask."""
import dataclasses
import json
import threading

from bot.models import ActionKind
from bot.remediation import audit
from bot.remediation.fixes import FIXES
from handlers.app import web_client
from bot.services import assemble
from syncbot.sandbox.slack import bolt_request, slash_command_body
from syncbot.wiring import wire
from test_cli import run
from test_guard_approvals import second_client, together
from clicks import ALICE, BOB, CAROL, CHANNEL, MALLORY, approval_message, choose, click, diagnose, menu, \
    queued, run_worker, statements

POINTER = "is already asked for"


def replica(h):
    """A second bot replica: its own SyncBot and Redis client, the same Redis database and Slack."""
    bot = assemble(h.sandbox.catalog, h.sandbox.gateways, second_client())
    return wire(bot, client=web_client("xoxb-test", h.slack.api_url), signing_secret=h.secret,
                process_before_response=True, poll_s=0.01, sleep=lambda s: None)


def resync_command(h, user, app=None):
    body = slash_command_body("resync orders rows lost overnight", user, CHANNEL, h.slack.response_url())
    assert (app or h.app).dispatch(bolt_request(body, h.secret)).status == 200


def answers(h):
    return [c.params["text"] for c in h.slack.of("response_url") if c.params.get("response_type") == "ephemeral"]


def cards(h):
    return [c for c in h.slack.of("chat.postMessage") if c.params.get("text", "").startswith("Re-sync table")]


def open_requests(h):
    return [k for k in h.redis.scan_iter("syncbot:req:*") if not k.endswith(b":people")]


def permalink(ts):
    return f"https://sandbox.slack.com/archives/{CHANNEL}/p{ts.replace('.', '')}"


def test_two_people_asking_at_once_on_two_replicas_get_one_request_and_one_pointer(harness):
    h = harness("healthy")
    other = replica(h)
    together(2, lambda i: resync_command(h, (ALICE, BOB)[i], app=(h.app, other.app)[i]))
    [card] = cards(h)
    assert len(open_requests(h)) == 1
    said = answers(h)
    assert len(said) == 2 and sum("1 more approver(s) must approve" in a for a in said) == 1
    [pointer] = [a for a in said if POINTER in a]
    [key] = open_requests(h)
    winner = h.wiring.approvals.get(key.decode().rsplit(":", 1)[-1]).requester
    loser = BOB if winner == ALICE else ALICE
    assert f"<@{winner}>" in json.dumps(card.params["blocks"])
    assert f"<@{winner}> asked at " in pointer and "waiting for approval (1 of 2 people so far" in pointer
    assert f"<{permalink(card.ts)}|its request message>: you can approve it there." in pointer
    asked = h.slack.of("chat.getPermalink")[-1].params
    assert (asked["channel"], asked["message_ts"]) == (CHANNEL, card.ts)
    refused = [(e.event, e.user) for e in audit.read(h.redis, "orders") if e.event == "duplicate"]
    assert refused == [("duplicate", loser)]


def test_two_asks_that_both_passed_the_quick_look_still_make_one_request(harness, monkeypatch):
    """Both replicas found no open request and are building their plans when they meet at the barrier:
    only the create script stands between them and two requests."""
    h = harness("healthy")
    other = replica(h)
    barrier, fix = threading.Barrier(2, timeout=20), FIXES[ActionKind.RESYNC]

    def prepare(situation):
        prepared = fix.prepare(situation)
        barrier.wait()
        return prepared

    monkeypatch.setitem(FIXES, ActionKind.RESYNC, dataclasses.replace(fix, prepare=prepare))
    together(2, lambda i: resync_command(h, (ALICE, BOB)[i], app=(h.app, other.app)[i]))
    assert len(cards(h)) == 1 and len(open_requests(h)) == 1
    said = answers(h)
    assert len(said) == 2 and sum(POINTER in a for a in said) == 1
    assert len([e for e in audit.read(h.redis, "orders") if e.event == "duplicate"]) == 1


def test_eight_asks_at_once_through_the_menu_and_the_command_make_one_request(harness):
    """The ⋯ menu of one diagnosis (one offer, as a fix button) and the typed command (a fresh offer each
    time), on two replicas, released together. (Eight fix-button clicks race in test_guard_jobs.)"""
    h = harness("load-failed")
    other = replica(h)
    ts, buttons = diagnose(h)
    assert "resync" not in buttons  # in this scenario the re-sync is in the menu
    overflow = menu(h.slack.of("chat.postMessage")[-1])
    routes = (lambda user, app: choose(h, overflow, overflow["options"][0], user, ts, app=app),
              lambda user, app: resync_command(h, user, app=app))
    people = (ALICE, BOB, CAROL)
    together(8, lambda i: routes[i % 2](people[i % 3], (h.app, other.app)[(i // 2) % 2]))
    assert len(cards(h)) == 1 and len(open_requests(h)) == 1
    said = answers(h)
    assert len(said) == 8 and sum(POINTER in a for a in said) == 7
    assert sum("1 more approver(s) must approve" in a for a in said) == 1
    assert len([e for e in audit.read(h.redis, "orders") if e.event == "duplicate"]) == 7


def test_the_pointer_follows_the_request_until_it_ends_and_then_a_new_one_is_made(harness):
    h = harness("healthy")
    resync_command(h, ALICE)
    [card] = cards(h)
    ts, _ = diagnose(h, user=BOB)  # Bob, not seeing Alice's card, diagnoses and uses the ⋯ menu
    overflow = menu(h.slack.of("chat.postMessage")[-1])
    pointer = choose(h, overflow, overflow["options"][0], BOB, ts)
    assert pointer.startswith(":information_source: *Re-sync table* on `orders` is already asked for: <@U0ALICE01> "
                              "asked at ")
    assert "Nothing new was made." in pointer and permalink(card.ts) in pointer and "approve it there" in pointer
    mine = choose(h, overflow, overflow["options"][0], ALICE, ts)
    assert "You asked at " in mine and mine.endswith(": it waits for another approver.")
    assert "Only approvers can run fixes" in choose(h, overflow, overflow["options"][0], MALLORY, ts)
    _, approve = approval_message(h)
    assert "queued" in click(h, approve["Approve"], CAROL, message_ts=card.ts)
    queued_pointer = choose(h, overflow, overflow["options"][0], BOB, ts)
    assert "approved at " in queued_pointer and "waiting for a worker to start it" in queued_pointer
    assert "approve it there" not in queued_pointer
    run_worker(h)
    assert h.slack.messages[card.ts].params["text"] == "Re-sync table orders: done"
    assert "1 more approver(s) must approve" in choose(h, overflow, overflow["options"][0], BOB, ts)
    assert len(cards(h)) == 2 and len(h.sandbox.dms_task().reloads) == 1


def test_a_rejected_request_frees_the_table_for_the_next_ask(harness):
    h = harness("healthy")
    resync_command(h, ALICE)
    _, buttons = approval_message(h)
    assert click(h, buttons["Reject"], BOB) == "Rejected; nothing will run."
    resync_command(h, BOB)
    assert len(cards(h)) == 2 and "1 more approver(s) must approve" in answers(h)[-1]


def test_an_overdue_request_found_by_the_next_ask_is_expired_and_its_message_loses_its_buttons(harness):
    """No worker clock ran past its deadline: the next ask expires it in the same step as it makes the
    new request, and its message is drawn again without buttons."""
    h = harness("healthy")
    resync_command(h, ALICE)
    [old] = cards(h)
    _, buttons = approval_message(h)
    h.redis.hset(f"syncbot:req:{buttons['Approve']['value']}", "expires_at", "1")  # past its deadline
    resync_command(h, BOB)
    assert len(cards(h)) == 2 and "1 more approver(s) must approve" in answers(h)[-1]
    drawn = h.slack.messages[old.ts].params
    assert drawn["text"] == "Re-sync table orders: expired" and '"actions"' not in json.dumps(drawn["blocks"])


def test_a_quick_fix_while_a_resync_is_requested_says_the_resync_is_pending(harness):
    h = harness("stalled")
    ts, buttons = diagnose(h)
    click(h, buttons["resync"], ALICE, message_ts=ts)
    [card] = cards(h)
    said = click(h, buttons["restart_task"], BOB, message_ts=ts)
    first, note = said.split("\n")
    assert "Restart" in first and "queued" in first  # the quick fix goes ahead, independent as before
    assert note.startswith(":warning: A re-sync of `orders` is pending: <@U0ALICE01> asked at ")
    assert "waiting for approval" in note and "if this fix is enough, reject it." in note
    assert f"<{permalink(card.ts)}|its request message>" in note
    run_worker(h)
    assert h.sandbox.dms_task().status == "running" and statements(h, "TRUNCATE") == []
    assert h.wiring.approvals.open_request("orders", ActionKind.RESYNC).state.value == "requested"


def test_a_quick_fix_asked_again_while_queued_points_to_the_first(harness):
    h = harness("load-failed")
    ts, buttons = diagnose(h)
    assert "queued" in click(h, buttons["pause_pipe"], ALICE, message_ts=ts)
    ts2, fresh = diagnose(h, user=BOB)
    pointer = click(h, fresh["pause_pipe"], BOB, message_ts=ts2)
    assert pointer.startswith(":information_source: *Pause pipe* on `orders` is already asked for: <@U0ALICE01>")
    assert "waiting for a worker" in pointer and "|the thread it reports in>." in pointer  # no card: its thread
    assert queued(h) == 1
    run_worker(h)
    assert statements(h, "ALTER PIPE") == ["ALTER PIPE STAGING.ORDERS_PIPE SET PIPE_EXECUTION_PAUSED = TRUE"]


def test_the_pointer_says_when_it_cannot_link_to_the_request_message(harness):
    """The bot is not in the channel: the request went out through the command's response_url, so
    there is no message to link to; the pointer says so instead of linking somewhere else."""
    h = harness("healthy")
    h.slack.not_in_channels.add(CHANNEL)
    resync_command(h, ALICE)
    assert [c.params["response_type"] for c in h.slack.of("response_url")].count("in_channel") == 1
    resync_command(h, BOB)
    pointer = answers(h)[-1]
    assert POINTER in pointer and "I cannot link to its request message (request `" in pointer
    assert "syncbot audit --table orders" in pointer and h.slack.of("chat.getPermalink") == []


def test_audit_command_records_the_refused_ask(harness, monkeypatch, capsys):
    from syncbot.cli import main

    h = harness("healthy")
    resync_command(h, ALICE)
    resync_command(h, BOB)
    db = h.redis.connection_pool.connection_kwargs["db"]
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:6379/{db}")
    assert main(["audit", "--table", "orders"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[4] for line in lines] == ["duplicate", "requested"]
    assert BOB in lines[0] and lines[0].endswith("asked again while requested; nothing made")
    request_id = lines[1].split()[6]
    assert lines[0].split()[6] == request_id  # recorded on the open request's trail


def test_console_shows_the_pointer():
    script = "/sync-status resync orders rows lost overnight\nas U0BOB0002\n/sync-status resync orders\n"
    result = run("console", "--scenario", "healthy", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.count("== Re-sync table orders: approval needed ==") == 1
    bob = out.split("U0BOB0002> /sync-status resync orders")[1]
    assert "(only visible to you) ℹ️ Re-sync table on orders is already asked for: <@U0ALICE01> asked at " in bob
    assert "its request message (https://sandbox.slack.com/archives/C0INCIDNT/p" in bob
    assert "you can approve it there." in bob
