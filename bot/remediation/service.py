"""What the Slack glue calls when a fix, Approve or Reject button is clicked. Every answer says what
happened in words fit for the clicker; every refusal changes nothing. Redis unreachable: refuse."""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Callable

from redis.exceptions import RedisError

from ..core import SyncBot
from ..gateways import GatewayError
from ..models import ACTION_LABELS, ActionKind
from .access import Approvers
from .approvals import ApprovalRequest, Approvals
from .executors import execute
from .jobs import Reporter
from .plans import PlanError, build_plan
from .policy import POLICIES, people_required

log = logging.getLogger(__name__)

STALE = ("That button is no longer valid (it expired or was not made by me). "
         "Run `/sync-status <table>` again for fresh buttons.")
STORE_DOWN = ("I can't reach the approval store (Redis), so I won't run any fix: approvals and "
              "exactly-once execution depend on it. Diagnosis still works; follow the runbook by hand.")


@dataclass(frozen=True)
class Answer:
    ok: bool
    text: str  # shown privately to whoever clicked
    request: ApprovalRequest | None = None
    post_request: bool = False  # a new approval request to post in the diagnosis thread
    changed: bool = False  # the request's message must be drawn again


def _refuse(text: str, request: ApprovalRequest | None = None, changed: bool = False) -> Answer:
    return Answer(False, text, request, changed=changed)


class Remediation:
    def __init__(self, bot: SyncBot, approvals: Approvals, approvers: Approvers, enqueue: Callable[[str], None],
                 reporter: Reporter, *, stop_wait_s: float = 300):
        self.bot, self.approvals, self.approvers = bot, approvals, approvers
        self._enqueue, self._reporter, self._stop_wait_s = enqueue, reporter, stop_wait_s
        self._worker = f"bot-{os.getpid()}"

    def click(self, offer_id: str, kind: ActionKind, user: str, thread_ts: str) -> Answer:
        try:
            return self._click(offer_id, kind, user, thread_ts)
        except RedisError:
            log.warning("approval store unreachable; refusing a fix")
            return _refuse(STORE_DOWN)

    def approve(self, request_id: str, user: str) -> Answer:
        try:
            return self._approve(request_id, user)
        except RedisError:
            return _refuse(STORE_DOWN)

    def reject(self, request_id: str, user: str) -> Answer:
        try:
            return self._reject(request_id, user)
        except RedisError:
            return _refuse(STORE_DOWN)

    def expire_overdue(self) -> int:
        """Called by the worker's clock: undecided requests past their deadline lose their buttons."""
        expired = self.approvals.expire_overdue()
        for request_id in expired:
            self._reporter.request_changed(self.approvals.get(request_id))
        return len(expired)

    # -- the flows ---------------------------------------------------------------------------------

    def _click(self, offer_id: str, kind: ActionKind, user: str, thread_ts: str) -> Answer:
        offer = self.bot.offers.get(offer_id)
        if offer is None or offer.action is not kind:
            return _refuse(STALE)
        if not self.approvers.allows(user):
            return _refuse(f"Only approvers can run fixes; ask one of {self.approvers.listing()}.")
        if (used := self.approvals.for_offer(offer.id)) is not None:
            return self._already_used(used)
        spec = self.bot.find(offer.table)
        if spec is None:
            return _refuse(f"`{offer.table}` is no longer in the catalog.")
        policy = POLICIES[kind]
        if policy.destructive and (holder := self.approvals.lock_holder(spec.name)):
            return _refuse(f"Another destructive action (request {holder}) is running on `{spec.name}`; "
                           "wait for it to finish.")
        try:
            plan = build_plan(kind, spec, self.bot.diagnoser.gateways, list(self.bot.catalog.tables))
        except PlanError as exc:
            return _refuse(str(exc))
        except GatewayError as exc:
            return _refuse(f"I could not prepare {ACTION_LABELS[kind]} for `{spec.name}`: {exc}. Nothing was run.")
        people = people_required(kind, self.bot.catalog.access)
        created, request_id = self.approvals.create(
            offer_id=offer.id, action=kind.value, table=spec.name, requester=user, people=people,
            ttl_s=self.bot.catalog.access.approval_ttl_minutes * 60, steps=plan.steps, facts=plan.facts,
            plan_hash=plan.hash, data=plan.data, channel=offer.channel, thread_ts=thread_ts)
        request = self.approvals.get(request_id)
        if not created:  # two clicks raced past the check above; the script let one through
            return self._already_used(request)
        if people > 1:
            return Answer(True, f"Approval requested: {people - 1} more approver(s) must approve in the thread.",
                          request, post_request=True)
        return self._run(request)

    @staticmethod
    def _already_used(request: ApprovalRequest) -> Answer:
        return _refuse(f"This button was already used by <@{request.requester}>: the request is {request.state}. "
                       f"Run `/sync-status {request.table}` for fresh buttons.", request)

    def _approve(self, request_id: str, user: str) -> Answer:
        request = self.approvals.get(request_id)
        if request is None:
            return _refuse(STALE)
        if not self.approvers.allows(user):
            return _refuse(f"Only approvers can approve; ask one of {self.approvers.listing()}.")
        if request.state != "requested":
            return _refuse(f"This request is already {request.state}; nothing was changed.", request)
        spec = self.bot.find(request.table)
        try:
            plan = build_plan(ActionKind(request.action), spec, self.bot.diagnoser.gateways,
                              list(self.bot.catalog.tables)) if spec else None
        except (PlanError, GatewayError) as exc:
            return _refuse(f"I could not check the plan is unchanged ({exc}); nothing was approved.")
        result = self.approvals.approve(request_id, user, plan.hash if plan else "no-plan")
        request = self.approvals.get(request_id)
        status = result[0]
        if status == "self":
            return _refuse("You asked for this; a second approver has to approve it.")
        if status == "already":
            return _refuse("You already approved this request.")
        if status == "expired":
            return _refuse("This request expired before it was approved; nothing was run.", request, changed=True)
        if status == "plan_changed":
            return _refuse("What this would run has changed since it was requested (another task, table or "
                           "column set), so the approval does not carry over. Request it again.", request, changed=True)
        if status in ("missing", "state"):
            return _refuse(f"This request is {result[1] if len(result) > 1 else 'gone'}; nothing was changed.", request)
        if status == "pending":
            return Answer(True, f"Approved ({result[1]} of {result[2]} people).", request, changed=True)
        return self._run(request)

    def _reject(self, request_id: str, user: str) -> Answer:
        request = self.approvals.get(request_id)
        if request is None:
            return _refuse(STALE)
        if user != request.requester and not self.approvers.allows(user):
            return _refuse(f"Only approvers can reject; ask one of {self.approvers.listing()}.")
        result = self.approvals.reject(request_id, user, "withdrawn" if user == request.requester else "rejected")
        request = self.approvals.get(request_id)
        if result[0] != "rejected":
            return _refuse(f"This request is already {request.state if request else 'gone'}; nothing was changed.")
        return Answer(True, "Rejected; nothing will run.", request, changed=True)

    def _run(self, request: ApprovalRequest) -> Answer:
        kind = ActionKind(request.action)
        if POLICIES[kind].destructive:
            self._enqueue(request.id)
            return Answer(True, f"Approved: {ACTION_LABELS[kind]} of `{request.table}` is starting; "
                                "progress follows in the thread.", self.approvals.get(request.id), changed=True)
        claim = self.approvals.claim(request.id, request.table, self._worker, lease_s=self._stop_wait_s + 60,
                                     lock_ttl_s=0)
        if claim[0] != "claimed":
            return _refuse(f"This request is already {claim[1]}; nothing was run twice.", self.approvals.get(request.id))
        spec = self.bot.find(request.table)
        outcome = execute(kind, request.plan_data, spec, self.bot.diagnoser.gateways, stop_wait_s=self._stop_wait_s)
        text = "; ".join((outcome.summary, *outcome.lines))
        self.approvals.finish(request.id, request.table, self._worker, outcome.ok, text)
        done = self.approvals.get(request.id)
        return Answer(outcome.ok, f"{ACTION_LABELS[kind]}: {text}" if outcome.ok else
                      f"{ACTION_LABELS[kind]} failed: {text}", done, changed=True)
