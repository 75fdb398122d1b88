"""The form asking why a fix that needs two people should run: opened with the click's trigger_id
(views.open, https://api.slack.com/methods/views.open: the trigger expires 3 s after the click), and
its submission (view_submission, acknowledged within 3 s; a refused reason is shown on its field with
response_action "errors", https://api.slack.com/surfaces/modals#displaying_errors). The core decides;
the submission asks again, with the reason, exactly as the click did."""
from __future__ import annotations

import json
import logging

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import InputBlock, MarkdownTextObject, PlainTextInputElement, SectionBlock
from slack_sdk.models.views import View

from bot.models import ActionKind
from bot.remediation.service import REASON_MAX, ReasonNeeded, Remediation, reason_problem

from .blocks import escape, truncate
from .ids import ViewId
from .poster import Poster

log = logging.getLogger(__name__)


def reason_view(need: ReasonNeeded, response_url: str) -> View:
    """`response_url`: the click's or command's, kept in the form so the request can still reach a
    channel the bot is not in (private_metadata, at most 3,000 characters, carries only ids)."""
    meta = json.dumps({"offer": need.offer_id, "kind": need.kind.value, "thread": need.thread,
                       "channel": need.channel, "url": response_url})
    return View(type="modal", callback_id=ViewId.REASON, private_metadata=meta,
                title=truncate(need.label, 24), submit="Ask for approval", close="Cancel",
                blocks=[SectionBlock(text=MarkdownTextObject(text=truncate(
                            f"*{escape(need.label)}* of `{escape(need.table)}` needs a second person. "
                            f"{escape(need.what)}\nThe request lists every step it runs, worked out from the systems "
                            "as they are now, and an approver reads them before anything runs.", 3000))),
                        InputBlock(block_id=ViewId.REASON_BLOCK, label="Why should it run?",
                                   hint="Shown to the approvers and kept in the audit trail.",
                                   element=PlainTextInputElement(action_id=ViewId.REASON_INPUT, multiline=True,
                                                                 max_length=REASON_MAX))])


def open_reason_form(client, trigger_id: str, need: ReasonNeeded, response_url: str, user: str) -> None:
    try:
        client.views_open(trigger_id=trigger_id, view=reason_view(need, response_url).to_dict())
    except SlackApiError as exc:  # e.g. expired_trigger_id: say how to ask without the form
        log.warning("views.open failed: %s", exc.response.get("error"))
        Poster(client).ephemeral(response_url, f"I could not open the form asking why {need.label} should run. "
                                 f"Type `/sync-status resync {escape(need.table)} <reason>` instead"
                                 if need.kind is ActionKind.RESYNC else "Press the button again.",
                                 channel=need.channel, user=user)


def register(app: App, remediation: Remediation, reporter) -> None:
    from .actions import show  # actions registers the buttons that open this form

    @app.view(ViewId.REASON)
    def reason_given(ack, body, view, client):
        reason = ((view.get("state", {}).get("values", {}).get(ViewId.REASON_BLOCK, {})
                   .get(ViewId.REASON_INPUT, {}).get("value")) or "")
        if (problem := reason_problem(reason)) is not None:
            ack(response_action="errors", errors={ViewId.REASON_BLOCK: problem})
            return
        ack()
        meta = json.loads(view.get("private_metadata") or "{}")
        user = body["user"]["id"]
        try:
            kind = ActionKind(meta.get("kind", ""))
        except ValueError:
            return
        answer = remediation.click(meta.get("offer", ""), kind, user, meta.get("thread", ""), reason)
        show(answer, client, remediation, reporter, meta.get("url", ""), channel=meta.get("channel", ""), user=user)
