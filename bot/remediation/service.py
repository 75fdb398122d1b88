"""What the Slack glue calls when a fix, Approve, Reject or Cancel button is clicked. Every answer
says what happened in words fit for the clicker; every refusal changes nothing. Redis unreachable:
refuse. Nothing here runs a fix: approved requests go to the worker's queue (jobs.py)."""
from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Callable

from redis.exceptions import RedisError

from ..core import SyncBot
from ..gateways import GatewayError
from ..models import ActionKind
from ..redis_conn import NotConfirmed
from .access import Approvers
from .approvals import ApprovalRequest, Approvals, Created, Result, State
from .fix import PlanError
from .fixes import EVERYWHERE, FIXES

log = logging.getLogger(__name__)

STALE = ("That button is no longer valid (it expired or was not made by me). "
         "Run `/sync-status <table>` again for fresh buttons.")
REASON_MAX = 500  # characters: what the approval card, the audit trail and the DMs carry
STORE_DOWN = ("I can't reach the approval store (Redis), so I won't run any fix: approvals and "
              "exactly-once execution depend on it. Diagnosis still works; follow the runbook by hand.")
NOT_RECORDED = ("Not recorded, try again: the approval store (Redis) could not confirm this on a replica, so it "
                "could be lost if Redis fails over, and nothing was run on it. Click again in a moment.")


@dataclass(frozen=True)
class OpenRequest:
    """A request already open for a table and fix kind, as seen by someone who asked for it again."""

    request: ApprovalRequest
    asker: str  # who asked again
    may_approve: bool  # the asker may approve it on its message


@dataclass(frozen=True)
class ReasonNeeded:
    """A fix that needs two people was asked for without a reason: the glue asks for one (a form) and
    asks again with it. Nothing was made; the offer stays usable."""

    offer_id: str
    kind: ActionKind
    table: str
    label: str
    what: str  # what it will do, in one sentence (the plan itself is worked out once the reason is in)
    thread: str
    channel: str


def reason_problem(reason: str) -> str | None:
    """Why a reason is refused, or None: required, plain text, at most REASON_MAX characters."""
    if not reason.strip():
        return "Say why this should run: the approvers and the audit trail need a reason."
    if len(reason.strip()) > REASON_MAX:
        return f"The reason is {len(reason.strip())} characters; at most {REASON_MAX}."
    return None


@dataclass(frozen=True)
class Answer:
    ok: bool
    text: str  # shown privately to whoever clicked
    request: ApprovalRequest | None = None
    post_request: bool = False  # a new approval request to post in the diagnosis thread
    changed: bool = False  # the request's message must be drawn again
    ask: tuple[str, ...] = ()  # people (user or usergroup ids) the clicker should ask instead
    already_open: OpenRequest | None = None  # the ask made nothing: this request for the same fix is open
    resync_pending: OpenRequest | None = None  # a re-sync of the same table awaits approval or a worker
    made_room: ApprovalRequest | None = None  # an overdue request for the same fix, expired by this ask
    needs_reason: ReasonNeeded | None = None  # nothing made: ask for a reason, then ask again with it


def _refuse(text: str, request: ApprovalRequest | None = None, changed: bool = False,
            ask: tuple[str, ...] = ()) -> Answer:
    return Answer(False, text, request, changed=changed, ask=ask)


class Remediation:
    def __init__(self, bot: SyncBot, approvals: Approvals, approvers: Approvers,
                 enqueue: Callable[[ApprovalRequest], None]):
        self.bot, self.approvals, self.approvers = bot, approvals, approvers
        self._enqueue = enqueue

    def click(self, offer_id: str, kind: ActionKind, user: str, thread: str, reason: str = "") -> Answer:
        """`reason`: why, required (see reason_problem) for a fix that needs two people; without one the
        answer's `needs_reason` says what to ask for."""
        return self._guarded(lambda: self._click(offer_id, (kind,), user, thread, reason))

    def choose(self, offer_id: str, user: str, thread: str, reason: str = "") -> Answer:
        """Picked from the diagnosis's overflow menu, which holds only the fixes offered everywhere."""
        return self._guarded(lambda: self._click(offer_id, EVERYWHERE, user, thread, reason))

    def request(self, table: str, kind: ActionKind, user: str, channel: str, reason: str = "") -> Answer:
        """Typed rather than clicked (`/sync-status resync <table> <reason>`): the same request a button makes."""
        return self._guarded(lambda: self._click(self.bot.offers.create(table, kind, channel).id, (kind,), user, "",
                                                 reason))

    def approve(self, request_id: str, user: str) -> Answer:
        return self._guarded(lambda: self._approve(request_id, user))

    def reject(self, request_id: str, user: str) -> Answer:
        return self._guarded(lambda: self._reject(request_id, user))

    def cancel(self, request_id: str, user: str) -> Answer:
        return self._guarded(lambda: self._cancel(request_id, user))

    def channel_of(self, request_id: str) -> str:
        """The request's channel, "" if unknown or Redis cannot say (the answer already says so)."""
        try:
            request = self.approvals.get(request_id)
        except RedisError:
            return ""
        return request.channel if request else ""

    @staticmethod
    def _guarded(flow: Callable[[], Answer]) -> Answer:
        try:
            return flow()
        except NotConfirmed:
            log.warning("no Redis replica confirmed a transition; refusing a fix until one does")
            return _refuse(NOT_RECORDED)
        except RedisError:
            log.warning("approval store unreachable; refusing a fix")
            return _refuse(STORE_DOWN)

    # -- the flows ---------------------------------------------------------------------------------

    def _click(self, offer_id: str, kinds: tuple[ActionKind, ...], user: str, thread: str, reason: str) -> Answer:
        offer = self.bot.offers.get(offer_id)
        if offer is None or offer.action not in kinds:
            return _refuse(STALE)
        kind = offer.action
        if not self.approvers.allows(user):
            return _refuse("Only approvers can run fixes.", ask=self.approvers.ids)
        spec = self.bot.find(offer.table)
        if spec is None:
            return _refuse(f"`{offer.table}` is no longer in the catalog.")
        # A button whose request ended stays used; one whose request is open points to it, like any ask.
        if (used := self.approvals.for_offer(offer.id)) is not None and used.state.final:
            return self._already_used(used)
        # Answered before the plan is built (backends may be slow or down); create() decides atomically.
        if (open_request := self.approvals.open_request(spec.name, kind, asker=user)) is not None:
            return self._point_to(open_request, user)
        if holder := self.approvals.lock_holder(spec.name):
            return _refuse(f"Another fix (request {holder}) is running on `{spec.name}`; nothing else runs on the "
                           "table until it ends. Follow it in its thread.")
        fix = FIXES[kind]
        people = fix.people_required(self.bot.catalog.access)
        # After the open-request pointer (asking again makes nothing, so needs no reason) and before the
        # plan (slow backends): a form asking why can open within the click's few seconds.
        if people > 1 and (problem := reason_problem(reason)) is not None:
            if reason.strip():
                return _refuse(problem)
            return Answer(False, problem, needs_reason=ReasonNeeded(
                offer.id, kind, spec.name, fix.label, fix.confirm_text(spec.name), thread, offer.channel))
        try:
            plan = fix.plan(spec, self.bot.gateways, list(self.bot.catalog.tables))
        except PlanError as exc:
            return _refuse(str(exc))
        except GatewayError as exc:
            return _refuse(f"I could not prepare {fix.label} for `{spec.name}`: {exc}. Nothing was run.")
        reply = self.approvals.create(
            offer_id=offer.id, action=kind, table=spec.name, requester=user, people=people,
            ttl_s=self.bot.catalog.access.approval_ttl_minutes * 60, steps=plan.steps, facts=plan.facts,
            plan_hash=plan.hash, data=plan.data.to_json(), channel=offer.channel, thread=thread,
            reason=reason.strip()[:REASON_MAX])
        return self._created(reply, kind, spec.name, user)

    def _created(self, reply: Created, kind: ActionKind, table: str, user: str) -> Answer:
        """What the create script did, said to the asker."""
        label = FIXES[kind].label
        if reply.result is Result.RETRY:
            return _refuse(f"Several people are asking for {label} of `{table}` right now; nothing was made. "
                           "Ask again in a moment.")
        # An overdue request the script expired to make room: its message loses its buttons.
        made_room = self.approvals.get(reply.detail) if reply.result is not Result.OPEN and reply.detail else None
        request = self.approvals.get(reply.request_id)
        if request is None:  # ended and vanished between the script and this read
            return _refuse(f"The request for {label} of `{table}` is gone; nothing was made. Ask again.")
        if reply.result is Result.OPEN:  # asks raced past the check above; the script let one through
            return self._point_to(request, user)
        if reply.result is Result.EXISTS:
            return replace(self._already_used(request), made_room=made_room)
            return self._already_used(request)
        if request.people > 1:
            answer = Answer(True, f"Approval requested: {request.people - 1} more approver(s) must approve in the "
                                  "thread.", request, post_request=True)
        else:
            answer = self._queue(request)
        return replace(answer, resync_pending=self._pending_resync(kind, table, user), made_room=made_room)

    def _point_to(self, request: ApprovalRequest, user: str) -> Answer:
        """Someone asked for what is already asked for: nothing is made, and they are told where it is."""
        label = FIXES[request.action].label
        return Answer(False, f"{label} on `{request.table}` is already {request.state} (request {request.id}); "
                             "nothing new was made.", already_open=self._seen_by(request, user))

    def _seen_by(self, request: ApprovalRequest, user: str) -> OpenRequest:
        may_approve = (request.state is State.REQUESTED and user != request.requester
                       and user not in request.approved_by and self.approvers.allows(user))
        return OpenRequest(request, user, may_approve)

    def _pending_resync(self, kind: ActionKind, table: str, user: str) -> OpenRequest | None:
        """A quick fix while a re-sync of the table waits (for approvers or a worker): the re-sync would
        truncate and reload what the fix just changed, so the asker is told and can decide."""
        if kind is ActionKind.RESYNC:
            return None
        pending = self.approvals.open_request(table, ActionKind.RESYNC)
        if pending is None or pending.state not in (State.REQUESTED, State.APPROVED):
            return None
        return self._seen_by(pending, user)

    @staticmethod
    def _already_used(request: ApprovalRequest) -> Answer:
        return _refuse(f"This button was already used: the request is {request.state}. "
                       f"Run `/sync-status {request.table}` for fresh buttons.", request)

    def _approve(self, request_id: str, user: str) -> Answer:
        request = self.approvals.get(request_id)
        if request is None:
            return _refuse(STALE)
        if not self.approvers.allows(user):
            return _refuse("Only approvers can approve.", ask=self.approvers.ids)
        if request.state is not State.REQUESTED:
            return _refuse(f"This request is already {request.state}; nothing was changed.", request)
        spec = self.bot.find(request.table)
        try:
            plan = FIXES[request.action].plan(spec, self.bot.gateways, list(self.bot.catalog.tables)) if spec else None
        except (PlanError, GatewayError) as exc:
            return _refuse(f"I could not check the plan is unchanged ({exc}); nothing was approved.")
        reply = self.approvals.approve(request_id, user, plan.hash if plan else "no-plan")
        request = self.approvals.get(request_id)
        match reply.result:
            case Result.SELF:
                return _refuse("You asked for this; a second approver has to approve it.")
            case Result.ALREADY:
                return _refuse("You already approved this request.")
            case Result.EXPIRED:
                return _refuse("This request expired before it was approved; nothing was run.", request, changed=True)
            case Result.PLAN_CHANGED:
                return _refuse("What this would run has changed since it was requested (another task, table or "
                               "column set), so the approval does not carry over. Request it again.", request,
                               changed=True)
            case Result.PENDING:
                return Answer(True, f"Approved ({reply.detail} people).", request, changed=True)
            case Result.APPROVED:
                return self._queue(request)
        return _refuse(f"This request is {reply.detail or 'gone'}; nothing was changed.", request)

    def _reject(self, request_id: str, user: str) -> Answer:
        request = self.approvals.get(request_id)
        if request is None:
            return _refuse(STALE)
        if user != request.requester and not self.approvers.allows(user):
            return _refuse("Only approvers can reject.", ask=self.approvers.ids)
        reply = self.approvals.reject(request_id, user, "withdrawn" if user == request.requester else "rejected")
        request = self.approvals.get(request_id)
        if reply.result is not Result.REJECTED:
            return _refuse(f"This request is already {request.state if request else 'gone'}; nothing was changed.")
        return Answer(True, "Rejected; nothing will run.", request, changed=True)

    def _cancel(self, request_id: str, user: str) -> Answer:
        request = self.approvals.get(request_id)
        if request is None:
            return _refuse(STALE)
        if user != request.requester and not self.approvers.allows(user):
            return _refuse("Only approvers can cancel.", ask=self.approvers.ids)
        reply = self.approvals.cancel(request_id, request.table, user)
        request = self.approvals.get(request_id)
        if reply.result is Result.TOO_LATE:
            return _refuse("Too late to cancel: it has started changing the tables, and stopping halfway would "
                           "leave them worse. Follow it in the thread.", request)
        if reply.result is not Result.CANCELLED:
            return _refuse(f"This request is {reply.detail or 'gone'}; there is nothing to cancel.", request)
        return Answer(True, "Cancelled; nothing ran.", request, changed=True)

    def _queue(self, request: ApprovalRequest) -> Answer:
        """Approved: the worker runs it. If the queue cannot take it now, the approval still stands and
        the workers' recovery picks it up within its start window; say exactly that."""
        label = FIXES[request.action].label
        window = max(1, round(self.approvals.start_window_s / 60))
        try:
            self._enqueue(request)
        except Exception as exc:  # noqa: BLE001 - any queue failure: the approval stands, say so truthfully
            log.error("could not queue request %s: %s", request.id, type(exc).__name__)
            return Answer(True, f"Approved, but I could not queue {label} of `{request.table}` just now. It stays "
                                f"approved: a worker starts it as soon as it can reach the queue, within {window} min, "
                                "or it expires without running. Cancel it in the thread if it should not run.",
                          request, changed=True)
        return Answer(True, f"Approved: {label} of `{request.table}` is queued; progress and the result follow "
                            "in the thread.", self.approvals.get(request.id), changed=True)
