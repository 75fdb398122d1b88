"""Fix, Approve, Reject and Cancel buttons, and the diagnosis's overflow menu. The core decides; this
module acknowledges, shows the answer privately to the clicker, and keeps the thread's messages up
to date. Fixes themselves run in the worker, which reports their outcome in the thread."""
from __future__ import annotations

import logging
import time

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.alert_threads import Thread
from bot.models import ActionKind
from bot.redaction import redact
from bot.remediation.approvals import ApprovalRequest, State
from bot.remediation.service import Answer, Remediation

from . import blocks
from .approval_blocks import fallback, open_request_text, request_blocks, resync_pending_text
from .events import link
from .ids import FIX_ACTION, FIX_PREFIX, ActionId
from .blocks import mention
from .poster import Poster
from .progress import SlackReporter
from .reasons import open_reason_form

log = logging.getLogger(__name__)
# A request made a moment ago by someone else may not have its message yet (its poster is between the
# create and chat.postMessage): the person pointed to it waits this long for it, to link to it.
CARD_WAIT_S, CARD_RECENT_S = 3.0, 30.0
NOT_A_MEMBER = ("\nI am not a member of this channel, so I answered through Slack's response URL: later progress "
                "cannot be drawn here. `/invite` me to the channel, or follow `syncbot audit --table {table}`.")


def register(app: App, remediation: Remediation, reporter: SlackReporter, home=None) -> None:
    """`home`: the App Home publisher, to draw a person's Home again after they decided there."""
    @app.action(FIX_ACTION)
    def fix_clicked(ack, action, body, client):
        ack()
        kind = ActionKind(action["action_id"][len(FIX_PREFIX):])  # the listener's regex admits only known kinds
        answer = remediation.click(action.get("value", ""), kind, body["user"]["id"], _thread(body))
        answer_click(answer, body, client, remediation, reporter)

    @app.action(ActionId.MORE)
    def more_chosen(ack, action, body, client):
        ack()
        # The menu offers the fixes offered for every table; the value is the opaque offer id, checked
        # like a button's.
        value = (action.get("selected_option") or {}).get("value", "")
        answer = remediation.choose(value, body["user"]["id"], _thread(body))
        answer_click(answer, body, client, remediation, reporter)

    # The same buttons on the request's message and on the App Home: a Home click has no channel and no
    # response_url, so its answer goes to the request's channel privately, and the Home is drawn again.
    @app.action(ActionId.APPROVE)
    def approve_clicked(ack, action, body, client):
        ack()
        decided(remediation.approve(action.get("value", ""), body["user"]["id"]), body, client)

    @app.action(ActionId.REJECT)
    def reject_clicked(ack, action, body, client):
        ack()
        decided(remediation.reject(action.get("value", ""), body["user"]["id"]), body, client)

    @app.action(ActionId.CANCEL)
    def cancel_clicked(ack, action, body, client):
        ack()
        decided(remediation.cancel(action.get("value", ""), body["user"]["id"]), body, client)

    def decided(answer: Answer, body: dict, client) -> None:
        user = body["user"]["id"]
        # Without a response_url (the Home) a refusal is said privately in the request's own channel.
        channel = remediation.channel_of((body.get("actions") or [{}])[0].get("value", ""))
        show(answer, client, remediation, reporter, body.get("response_url", ""), user=user, channel=channel)
        if body.get("container", {}).get("type") == "view" and home is not None:
            home.publish(client, user)


def answer_click(answer: Answer, body: dict, client, remediation: Remediation, reporter: SlackReporter) -> None:
    """A fix that needs two people and no reason yet: the form asking why (the core already pointed
    to an open request for the same fix, if there was one); otherwise what the click did."""
    if answer.needs_reason is not None and body.get("trigger_id"):
        open_reason_form(client, body["trigger_id"], answer.needs_reason, body.get("response_url", ""),
                         body["user"]["id"])
        return
    show(answer, client, remediation, reporter, body.get("response_url", ""))


def _thread(body: dict) -> str:
    container = body.get("container", {})
    return container.get("thread_ts") or container.get("message_ts", "")


def show(answer: Answer, client, remediation: Remediation, reporter: SlackReporter, response_url: str, *,
         channel: str = "", user: str = "") -> None:
    """Tells the channel (a new approval request) and then the clicker what really happened. Where
    the bot cannot post, the request goes out through the click's response_url, which the worker
    also keeps for the outcome; a failure to post is said, never hidden behind "nothing changed"."""
    req = answer.request
    note = ""
    poster = Poster(client)
    if req is not None and response_url:
        reporter.remember_response_url(req.id, response_url)
    if answer.made_room is not None:  # expired by this ask: its message loses its buttons
        reporter.request_changed(answer.made_room)
    try:
        if answer.post_request and req is not None:
            ts = poster.post(req.channel, fallback(req), request_blocks(req), thread_ts=req.thread,
                             response_url=response_url)
            reporter.cards.on_request(req)  # the table's incident card, if it has one: "requested"
            if ts:
                remediation.approvals.attach_message(req.id, req.channel, ts)
            else:
                note = NOT_A_MEMBER.format(table=req.table)
        elif answer.changed and req is not None and req.people > 1 and not req.message:
            # The request went out through a response_url (the bot is not in the channel): nothing to redraw.
            reporter.tell_requester(req)
            note = NOT_A_MEMBER.format(table=req.table)
        elif answer.changed and req is not None:
            reporter.request_changed(req)
    except SlackApiError as exc:
        error = exc.response.get("error", "an error")
        log.warning("telling the channel about request %s failed: %s", req.id if req else "-", error)
        note = f"\nI could not post this in the channel (Slack answered `{blocks.escape(str(error))}`)."
    if answer.already_open is not None:
        text = open_request_text(answer.already_open, _where(client, _posted(remediation, answer.already_open.request)))
    else:
        text = redact(answer.text) + note
    if answer.resync_pending is not None:
        text += "\n" + resync_pending_text(answer.resync_pending, _where(client, answer.resync_pending.request))
    if answer.ask:
        text += " Ask one of " + ", ".join(mention(who) for who in answer.ask) + "."
    poster.ephemeral(response_url, text, channel=channel or (req.channel if req else ""),
                     user=user or (answer.already_open.asker if answer.already_open else ""))


def _posted(remediation: Remediation, req: ApprovalRequest) -> ApprovalRequest:
    """The request once its message is posted, if it is about to be (see CARD_WAIT_S)."""
    deadline = time.monotonic() + CARD_WAIT_S
    while (not req.message and req.people > 1 and req.state is State.REQUESTED
           and time.time() - req.created_at < CARD_RECENT_S and time.monotonic() < deadline):
        time.sleep(0.1)
        req = remediation.approvals.get(req.id) or req
    return req


def _where(client, req: ApprovalRequest) -> str:
    """A link to the request's own message (where its buttons are), else to the thread it reports in."""
    if req.message:
        return "See " + link(client, Thread(req.channel, req.message), "its request message")
    # A one-person fix has no request message; a two-person one without it went out through a
    # response_url (the bot is not in the channel) or was never posted (a restart at that moment).
    see = f"I cannot link to its request message (request `{req.id}`); see" if req.people > 1 else "See"
    if req.thread:
        return f"{see} " + link(client, Thread(req.channel, req.thread), "the thread it reports in")
    return f"{see} `syncbot audit --table {blocks.escape(req.table)}` (request `{req.id}`)"
