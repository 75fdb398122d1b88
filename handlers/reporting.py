"""Tells Slack about remediation progress: the approval message drawn again in place (chat.update,
which, unlike response_url, does not expire after 30 minutes), the final diagnosis in the thread."""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.core import SyncBot
from bot.models import Diagnosis
from bot.remediation.approvals import ApprovalRequest

from . import blocks
from .approval_blocks import fallback, request_blocks

log = logging.getLogger(__name__)
# chat.postMessage errors meaning "the bot may not post here" (not invited, a private channel it cannot
# see, archived): the answer then goes through the interaction's response_url.
CANNOT_POST = ("not_in_channel", "channel_not_found", "is_archived")


class SlackReporter:
    def __init__(self, client: WebClient, bot: SyncBot):
        self._client, self._bot = client, bot

    def request_changed(self, request: ApprovalRequest | None) -> None:
        if request is None or not request.message_ts:
            return
        try:
            self._client.chat_update(channel=request.channel, ts=request.message_ts, text=fallback(request),
                                     blocks=blocks.to_dicts(request_blocks(request)))
        except SlackApiError as exc:  # progress is best effort; the request's state is in Redis
            log.warning("chat.update for request %s failed: %s", request.id, exc.response.get("error"))

    def diagnosis(self, request: ApprovalRequest, diag: Diagnosis) -> None:
        offers = self._bot.offer(diag, request.channel)
        try:
            self._client.chat_postMessage(channel=request.channel, thread_ts=request.thread_ts or request.message_ts,
                                          text="After the fix: " + blocks.fallback_text(diag),
                                          blocks=blocks.to_dicts(blocks.diagnosis_blocks(diag, offers)))
        except SlackApiError as exc:
            log.warning("posting the diagnosis after request %s failed: %s", request.id, exc.response.get("error"))


def usergroup_members(client: WebClient) -> Callable[[str], list[str]]:
    return lambda group: client.usergroups_users_list(usergroup=group)["users"]
