"""Fix buttons as Slack sends them: signed commands and clicks through Bolt's own request path, the reason
form answered, and what the worker, the audit trail and the thread show afterwards. Shared by the tests of
the fixes, the approvals, access and the re-sync."""
import json

from bot.remediation import audit
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


def request_resync(h):
    ts, buttons = diagnose(h)
    answer = click(h, buttons["resync"], ALICE, message_ts=ts)
    assert "1 more approver(s) must approve" in answer
    message, approve_buttons = approval_message(h)
    return ts, message, approve_buttons


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
