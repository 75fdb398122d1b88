"""Fix, Approve and Reject buttons. The core decides; this module acknowledges, shows the answer
privately to the clicker, and keeps the thread's messages up to date."""
from __future__ import annotations

import logging

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.models import ACTION_LABELS, ActionKind
from bot.redaction import redact
from bot.remediation.service import Answer, Remediation

from . import blocks
from .approval_blocks import fallback, request_blocks
from .ids import APPROVE_ACTION, FIX_ACTION, FIX_PREFIX, REJECT_ACTION
from .reporting import CANNOT_POST, SlackReporter

log = logging.getLogger(__name__)
NOT_A_MEMBER = ("\nI am not a member of this channel, so I answered through Slack's response URL: later progress "
                "cannot be drawn here. `/invite` me to the channel, or follow `syncbot audit --table {table}`.")


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
    """Tells the channel (when something was requested or ran) and then the clicker what really
    happened. The fix has already run when this is called, so a failure to post here must neither
    hide the outcome from the clicker nor be reported as "nothing changed"."""
    req = answer.request
    note = ""
    try:
        if answer.post_request and req is not None:
            ts = _post(client, respond, req.channel, req.thread_ts, fallback(req), request_blocks(req))
            if ts:
                remediation.approvals.attach_message(req.id, req.channel, ts)
            else:
                note = NOT_A_MEMBER.format(table=req.table)
        elif answer.changed and req is not None and req.people == 1 and req.state in ("succeeded", "failed"):
            # A one-person fix has no approval message: say in the thread, for everyone, what ran and how it went.
            mark = ":white_check_mark:" if req.state == "succeeded" else ":x:"
            text = (f"{mark} <@{user}> ran *{ACTION_LABELS[ActionKind(req.action)]}* on `{req.table}`: "
                    f"{blocks.escape(req.outcome)}")
            if _post(client, respond, req.channel, req.thread_ts, text) is None:
                note = NOT_A_MEMBER.format(table=req.table)
        elif answer.changed and req is not None and req.people > 1 and not req.message_ts:
            # The request went out through a response_url (the bot is not in the channel): nothing to redraw.
            note = NOT_A_MEMBER.format(table=req.table)
        elif answer.changed:
            reporter.request_changed(req)
    except SlackApiError as exc:
        error = exc.response.get("error", "an error")
        log.warning("telling the channel about request %s failed: %s", req.id if req else "-", error)
        note = f"\nI could not post this in the channel (Slack answered `{blocks.escape(str(error))}`)."
    respond(response_type="ephemeral", replace_original=False, text=redact(answer.text) + note)


def _post(client, respond, channel: str, thread_ts: str | None, text: str, message_blocks: list | None = None
          ) -> str | None:
    """chat.postMessage in the thread; where the bot may not post (not a member, private channel), the
    message goes to the channel through the click's response_url instead, and None is returned."""
    payload = blocks.to_dicts(message_blocks) if message_blocks else None
    try:
        return client.chat_postMessage(channel=channel, thread_ts=thread_ts or None, text=text, blocks=payload)["ts"]
    except SlackApiError as exc:
        if exc.response.get("error") not in CANNOT_POST:
            raise
        log.info("cannot post in %s (%s); answering through response_url", channel, exc.response.get("error"))
        respond(response_type="in_channel", replace_original=False, text=text, blocks=payload)
        return None
