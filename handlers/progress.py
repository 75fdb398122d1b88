"""Tells Slack about remediation progress: the approval message drawn again in place (chat.update,
which, unlike response_url, does not expire after 30 minutes), the outcome of a one-person fix and
the final diagnosis in the thread, and loud notes when something went wrong behind the scenes."""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.webhook import WebhookClient

from bot import callbacks
from bot.core import SyncBot
from bot.models import Diagnosis
from bot.remediation.approvals import ApprovalRequest, State
from bot.remediation.fixes import FIXES

from . import blocks
from .approval_blocks import fallback, request_blocks
from .blocks import mention

log = logging.getLogger(__name__)
# chat.postMessage errors meaning "the bot may not post here" (not invited, a private channel it cannot
# see, archived): the answer then goes through the interaction's response_url.
CANNOT_POST = ("not_in_channel", "channel_not_found", "is_archived")
# Slack honours a response_url for 30 minutes (and five uses): kept as long, per request, for the
# worker to report through where the bot cannot post.
RESPONSE_URL_TTL_S = 30 * 60


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
        self._post(request, f"{mark} {mention(request.requester)} {verb} *{FIXES[request.action].label}* "
                            f"on `{blocks.escape(request.table)}`: {blocks.escape(request.outcome)}")

    def state_lost(self, request: ApprovalRequest, what_ran: tuple[str, ...]) -> None:
        ran = "; ".join(what_ran) if what_ran else "no step had completed"
        self._post(request, f":rotating_light: *{FIXES[request.action].label}* of "
                            f"`{blocks.escape(request.table)}` stopped: the approval store (Redis) lost this request's "
                            f"record mid-run (a restart without persistence?). What had run: {blocks.escape(ran)}. "
                            "Nothing more will run; check the tables by hand and request it again if needed.")

    def diagnosis(self, request: ApprovalRequest, diag: Diagnosis) -> None:
        offers = self._bot.offer(diag, request.channel)
        self._post(request, "After the fix: " + blocks.fallback_text(diag),
                   blocks.to_dicts(blocks.diagnosis_blocks(diag, offers)))

    def remember_response_url(self, request_id: str, url: str) -> None:
        """The latest click's response_url for a request, so the worker can still tell the channel
        where chat.postMessage answers not_in_channel. Best effort: the request's state is elsewhere."""
        callbacks.keep(self._bot.redis, request_id, url, RESPONSE_URL_TTL_S)

    def _post(self, request: ApprovalRequest, text: str, payload: list | None = None) -> None:
        try:
            self.client.chat_postMessage(channel=request.channel, thread_ts=request.thread or request.message
                                          or None, text=text, blocks=payload)
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in CANNOT_POST or not self._through_response_url(request, text, payload):
                log.warning("posting about request %s failed: %s", request.id, error)

    def _through_response_url(self, request: ApprovalRequest, text: str, payload: list | None) -> bool:
        url = callbacks.recall(self._bot.redis, request.id)
        if not url:
            log.warning("cannot post in %s about request %s and its response_url has expired: invite the bot there",
                        request.channel, request.id)
            return False
        try:
            sent = WebhookClient(url).send(text=text, blocks=payload, response_type="in_channel", replace_original=False)
        except OSError as exc:  # the URL's host unreachable: said in the log like any failed post
            log.warning("response_url for request %s failed: %s", request.id, type(exc).__name__)
            return False
        return sent.status_code == 200


def usergroup_members(client: WebClient) -> Callable[[str], list[str]]:
    return lambda group: client.usergroups_users_list(usergroup=group)["users"]
