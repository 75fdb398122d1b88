"""Tells Slack about remediation progress: the approval message drawn again in place (chat.update,
which, unlike response_url, does not expire after 30 minutes), the outcome of a one-person fix and
the final diagnosis in the thread, and loud notes when something went wrong behind the scenes."""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import SyncBot
from bot.models import ACTION_LABELS, ActionKind, Diagnosis
from bot.remediation.approvals import ApprovalRequest, State

from . import blocks
from .approval_blocks import fallback, request_blocks
from .blocks import mention

log = logging.getLogger(__name__)


class SlackReporter:
    def __init__(self, client: WebClient, bot: SyncBot):
        self.client, self._bot = client, bot

    def request_changed(self, request: ApprovalRequest | None) -> None:
        if request is None or not request.message:
            return
        try:
            self.client.chat_update(channel=request.channel, ts=request.message, text=fallback(request),
                                     blocks=blocks.to_dicts(request_blocks(request)))
        except SlackApiError as exc:  # progress is best effort; the request's state is in Redis
            log.warning("chat.update for request %s failed: %s", request.id, exc.response.get("error"))

    def finished(self, request: ApprovalRequest | None) -> None:
        """A fix without an approval message (one person) says in the thread, for everyone, what ran
        and how it went; one with a message has it drawn again by request_changed."""
        if request is None or request.message or request.state not in (State.SUCCEEDED, State.FAILED):
            return
        mark = ":white_check_mark:" if request.state is State.SUCCEEDED else ":x:"
        verb = "ran" if request.state is State.SUCCEEDED else "ran, and it failed:"
        self._post(request, f"{mark} {mention(request.requester)} {verb} *{ACTION_LABELS[ActionKind(request.action)]}* "
                            f"on `{blocks.escape(request.table)}`: {blocks.escape(request.outcome)}")

    def state_lost(self, request: ApprovalRequest, what_ran: tuple[str, ...]) -> None:
        ran = "; ".join(what_ran) if what_ran else "no step had completed"
        self._post(request, f":rotating_light: *{ACTION_LABELS[ActionKind(request.action)]}* of "
                            f"`{blocks.escape(request.table)}` stopped: the approval store (Redis) lost this request's "
                            f"record mid-run (a restart without persistence?). What had run: {blocks.escape(ran)}. "
                            "Nothing more will run; check the tables by hand and request it again if needed.")

    def diagnosis(self, request: ApprovalRequest, diag: Diagnosis) -> None:
        offers = self._bot.offer(diag, request.channel)
        try:
            self.client.chat_postMessage(channel=request.channel, thread_ts=request.thread or request.message,
                                          text="After the fix: " + blocks.fallback_text(diag),
                                          blocks=blocks.to_dicts(blocks.diagnosis_blocks(diag, offers)))
        except SlackApiError as exc:
            log.warning("posting the diagnosis after request %s failed: %s", request.id, exc.response.get("error"))

    def _post(self, request: ApprovalRequest, text: str) -> None:
        try:
            self.client.chat_postMessage(channel=request.channel, thread_ts=request.thread or request.message
                                          or None, text=text)
        except SlackApiError as exc:
            log.warning("posting about request %s failed: %s", request.id, exc.response.get("error"))


def usergroup_members(client: WebClient) -> Callable[[str], list[str]]:
    return lambda group: client.usergroups_users_list(usergroup=group)["users"]
