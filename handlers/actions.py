"""Fix, Approve, Reject and Cancel buttons, and the diagnosis's overflow menu. The core decides; this
module acknowledges, shows the answer privately to the clicker, and keeps the thread's messages up
to date. Fixes themselves run in the worker, which reports their outcome in the thread."""
from __future__ import annotations

from slack_bolt import App

from bot.models import ActionKind
from bot.remediation.service import Answer, Remediation

from . import blocks
from .approval_blocks import fallback, request_blocks
from .ids import APPROVE_ACTION, CANCEL_ACTION, FIX_ACTION, FIX_PREFIX, MORE_ACTION, REJECT_ACTION
from .blocks import mention
from .reporting import SlackReporter


def register(app: App, remediation: Remediation, reporter: SlackReporter) -> None:
    @app.action(FIX_ACTION)
    def fix_clicked(ack, action, body, client, respond):
        ack()
        kind = ActionKind(action["action_id"][len(FIX_PREFIX):])  # the listener's regex admits only known kinds
        answer = remediation.click(action.get("value", ""), kind, body["user"]["id"], _thread(body))
        show(answer, client, respond, remediation, reporter)

    @app.action(MORE_ACTION)
    def more_chosen(ack, action, body, client, respond):
        ack()
        # The menu offers only the re-sync; the value is its opaque offer id, checked like a button's.
        value = (action.get("selected_option") or {}).get("value", "")
        answer = remediation.click(value, ActionKind.RESYNC, body["user"]["id"], _thread(body))
        show(answer, client, respond, remediation, reporter)

    @app.action(APPROVE_ACTION)
    def approve_clicked(ack, action, body, client, respond):
        ack()
        show(remediation.approve(action.get("value", ""), body["user"]["id"]), client, respond, remediation, reporter)

    @app.action(REJECT_ACTION)
    def reject_clicked(ack, action, body, client, respond):
        ack()
        show(remediation.reject(action.get("value", ""), body["user"]["id"]), client, respond, remediation, reporter)

    @app.action(CANCEL_ACTION)
    def cancel_clicked(ack, action, body, client, respond):
        ack()
        show(remediation.cancel(action.get("value", ""), body["user"]["id"]), client, respond, remediation, reporter)


def _thread(body: dict) -> str:
    container = body.get("container", {})
    return container.get("thread_ts") or container.get("message_ts", "")


def show(answer: Answer, client, respond, remediation: Remediation, reporter: SlackReporter) -> None:
    req = answer.request
    if answer.post_request and req is not None:
        posted = client.chat_postMessage(channel=req.channel, thread_ts=req.thread or None, text=fallback(req),
                                         blocks=blocks.to_dicts(request_blocks(req)))
        remediation.approvals.attach_message(req.id, req.channel, posted["ts"])
    elif answer.changed and req is not None:
        reporter.request_changed(req)
    text = answer.text
    if answer.ask:
        text += " Ask one of " + ", ".join(mention(who) for who in answer.ask) + "."
    respond(response_type="ephemeral", replace_original=False, text=text)
