"""Tells Slack about remediation progress: the approval message drawn again in place (chat.update,
which, unlike response_url, does not expire after 30 minutes), the outcome of a one-person fix and
the final diagnosis in the thread, and loud notes when something went wrong behind the scenes."""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot import callbacks
from bot.alert_threads import Thread
from bot.core import SyncBot
from bot.incidents import Incidents
from bot.models import Diagnosis
from bot.remediation.approvals import ApprovalRequest, State
from bot.remediation.fixes import FIXES

from . import blocks

from .approval_blocks import STATE_EMOJI, clock_time, fallback, request_blocks
from .events import link
from .incident_card import Cards
from .blocks import mention, truncate
from .poster import Poster

log = logging.getLogger(__name__)
# Slack honours a response_url for 30 minutes (and five uses): kept as long, per request, for the
# worker to report through where the bot cannot post.
RESPONSE_URL_TTL_S = 30 * 60
DM_MARK_TTL_S = 8 * 24 * 3600  # longer than a request's record lives (a week)


class SlackReporter:
    def __init__(self, client: WebClient, bot: SyncBot):
        self.client, self._bot = client, bot
        self.poster = Poster(client)
        self.cards = Cards(self.poster, Incidents(bot.redis))

    def request_changed(self, request: ApprovalRequest | None) -> None:
        if request is None:
            return
        self.tell_requester(request)
        self.cards.on_request(request)
        if not request.message:
            return
        # Best effort: the request's state is in Redis.
        self.poster.update(request.channel, request.message, fallback(request), request_blocks(request))

    def tell_requester(self, request: ApprovalRequest) -> None:
        """A direct message to whoever asked for a two-person fix, once per event (approved, then how it
        ended), with a link to its thread. Not for what they did themselves (withdrew, cancelled)."""
        if request.people < 2:
            return
        for event, text in _requester_news(request):
            if callbacks.first_time(self._bot.redis, f"dm:{request.id}:{event}", DM_MARK_TTL_S):
                where = request.message or request.thread
                if where and request.channel:
                    text = text.rstrip(".") + ". " + link(self.client, Thread(request.channel, where), "See the request")
                self.poster.direct(request.requester, text)

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
        self._post(request, "After the fix: " + blocks.fallback_text(diag), blocks.diagnosis_blocks(diag, offers))

    def follows(self, table: str) -> bool:
        return self.cards.incidents.is_open(table)

    def verified(self, request: ApprovalRequest, diag: Diagnosis) -> None:
        self.cards.verified(request, diag)

    def remember_response_url(self, request_id: str, url: str) -> None:
        """The latest click's response_url for a request, so the worker can still tell the channel
        where chat.postMessage answers not_in_channel. Best effort: the request's state is elsewhere."""
        callbacks.keep(self._bot.redis, request_id, url, RESPONSE_URL_TTL_S)

    def _post(self, request: ApprovalRequest, text: str, message_blocks: list | None = None) -> None:
        """In the request's thread; where the bot may not post, through the latest click's response_url."""
        try:
            self.poster.post(request.channel, text, message_blocks, thread_ts=request.thread or request.message,
                             response_url=lambda: callbacks.recall(self._bot.redis, request.id))
        except SlackApiError as exc:
            log.warning("posting about request %s failed: %s", request.id, exc.response.get("error"))


def _requester_news(req: ApprovalRequest) -> list[tuple[str, str]]:
    what = f"Your request for *{FIXES[req.action].label}* of `{blocks.escape(req.table)}`"
    news = []
    approvers = [u for u in req.approved_by if u != req.requester]
    if req.approved_at and approvers:
        news.append(("approved", f":white_check_mark: {what} was approved by "
                                 f"{', '.join(mention(u) for u in approvers)} at {clock_time(req.approved_at)}."))
    if req.state.final and req.decided_by != req.requester:
        by = f" by {mention(req.decided_by)}" if req.decided_by and req.decided_by != "syncbot" else ""
        outcome = f": {blocks.escape(truncate(req.outcome, 500))}" if req.outcome else "."
        news.append((req.state.value, f"{STATE_EMOJI.get(req.state, '')} {what} {req.state}{by} at "
                                      f"{clock_time(req.finished_at)}{outcome}"))
    return news


def usergroup_members(client: WebClient) -> Callable[[str], list[str]]:
    return lambda group: client.usergroups_users_list(usergroup=group)["users"]
