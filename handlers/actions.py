"""Fix, Approve and Reject buttons. The core decides; this module acknowledges, shows the answer
privately to the clicker, and keeps the thread's messages up to date."""
from __future__ import annotations

from slack_bolt import App

from bot.models import ACTION_LABELS, ActionKind
from bot.remediation.service import Answer, Remediation

from . import blocks
from .approval_blocks import fallback, request_blocks
from .ids import APPROVE_ACTION, FIX_ACTION, FIX_PREFIX, REJECT_ACTION
from .reporting import SlackReporter


def register(app: App, remediation: Remediation, reporter: SlackReporter) -> None:
    @app.action(FIX_ACTION)
    def fix_clicked(ack, action, body, client, respond):
        ack()
        container = body.get("container", {})
        thread = container.get("thread_ts") or container.get("message_ts", "")
        kind = ActionKind(action["action_id"][len(FIX_PREFIX):])  # the listener's regex admits only known kinds
        answer = remediation.click(action.get("value", ""), kind, body["user"]["id"], thread)
        _show(answer, body["user"]["id"], client, respond, remediation, reporter)

    @app.action(APPROVE_ACTION)
    def approve_clicked(ack, action, body, client, respond):
        ack()
        answer = remediation.approve(action.get("value", ""), body["user"]["id"])
        _show(answer, body["user"]["id"], client, respond, remediation, reporter)

    @app.action(REJECT_ACTION)
    def reject_clicked(ack, action, body, client, respond):
        ack()
        answer = remediation.reject(action.get("value", ""), body["user"]["id"])
        _show(answer, body["user"]["id"], client, respond, remediation, reporter)


def _show(answer: Answer, user: str, client, respond, remediation: Remediation, reporter: SlackReporter) -> None:
    req = answer.request
    if answer.post_request and req is not None:
        posted = client.chat_postMessage(channel=req.channel, thread_ts=req.thread_ts or None, text=fallback(req),
                                         blocks=blocks.to_dicts(request_blocks(req)))
        remediation.approvals.attach_message(req.id, req.channel, posted["ts"])
    elif answer.changed and req is not None and req.people == 1 and req.state in ("succeeded", "failed"):
        # A one-person fix has no approval message: say in the thread, for everyone, what ran and how it went.
        mark = ":white_check_mark:" if req.state == "succeeded" else ":x:"
        client.chat_postMessage(channel=req.channel, thread_ts=req.thread_ts or None,
                                text=f"{mark} <@{user}> ran *{ACTION_LABELS[ActionKind(req.action)]}* on "
                                     f"`{req.table}`: {blocks.escape(req.outcome)}")
    elif answer.changed:
        reporter.request_changed(req)
    respond(response_type="ephemeral", replace_original=False, text=answer.text)
