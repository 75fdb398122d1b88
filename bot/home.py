"""What a person's App Home shows, read from what is stored: requests waiting for their approval, their
own open requests, fixes running now, the tables not Healthy in the last fleet round (worst first,
with their owners), and active snoozes. Opening the Home never runs a diagnosis: the fleet figures
are the last round's (`/sync-status` with no table), and the Home says how old they are."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from .models import Diagnosis, Section, worst_first
from .remediation.access import Approvers
from .remediation.approvals import ApprovalRequest, Approvals, State
from .snoozes import Snooze, Snoozes

log = logging.getLogger(__name__)
_FLEET = "syncbot:fleet:last"
FLEET_TTL_S = 7 * 24 * 3600
LIST_MAX = 20  # per list: the Home is at most 100 blocks


@dataclass(frozen=True)
class Broken:
    """A table not Healthy in the last fleet round."""

    table: str
    section: str
    where: str
    owners: tuple[str, ...]


@dataclass(frozen=True)
class FleetRound:
    at: float  # when the round ran (epoch s); 0: no round recorded
    broken: tuple[Broken, ...]
    tables: int


def keep_fleet_round(redis: Any, diags: list[Diagnosis]) -> None:
    """Called after every fleet round: what the Home shows until the next one. Best effort."""
    broken = [{"table": d.table, "section": d.verdict.section.value, "where": d.verdict.where.value,
               "owners": list(d.owners)} for d in worst_first(diags) if d.verdict.section is not Section.HEALTHY]
    if redis is None:  # a bot assembled without Redis (a one-off diagnosis): nothing to keep it in
        return
    try:
        redis.set(_FLEET, json.dumps({"at": time.time(), "tables": len(diags), "broken": broken}), ex=FLEET_TTL_S)
    except RedisError:
        log.warning("could not keep the fleet round for the App Home")


def last_fleet_round(redis: Any) -> FleetRound:
    raw = redis.get(_FLEET)
    if not raw:
        return FleetRound(0.0, (), 0)
    data = json.loads(raw)
    return FleetRound(data["at"], tuple(Broken(b["table"], b["section"], b["where"], tuple(b["owners"]))
                                        for b in data["broken"]), data["tables"])


@dataclass(frozen=True)
class Home:
    user: str
    to_approve: tuple[ApprovalRequest, ...]  # only requests still waiting (requested), never their own
    mine: tuple[ApprovalRequest, ...]  # their own requests not yet ended
    running: tuple[ApprovalRequest, ...]
    fleet: FleetRound
    snoozes: tuple[Snooze, ...]
    owned: frozenset[str] = frozenset()  # broken tables this person owns (directly or by a usergroup)


def may_approve(req: ApprovalRequest, user: str, approvers: Approvers) -> bool:
    """Whether the Home offers `user` Approve/Reject on `req`. Only an offer: the approval itself is the
    same Lua transition as in the channel, which refuses self-approval, a changed plan and expiry."""
    return (req.state is State.REQUESTED and req.expires_at > time.time() and user != req.requester
            and user not in req.approved_by and approvers.allows(user))


def home_for(user: str, approvals: Approvals, approvers: Approvers, snoozes: Snoozes, tables: list[str]) -> Home:
    requests = [r for r in (approvals.get(i) for i in approvals.ids()) if r is not None]
    requests.sort(key=lambda r: r.created_at, reverse=True)
    fleet = last_fleet_round(approvals.redis)
    return Home(
        user,
        to_approve=tuple(r for r in requests if may_approve(r, user, approvers))[:LIST_MAX],
        mine=tuple(r for r in requests if r.requester == user and not r.state.final)[:LIST_MAX],
        running=tuple(r for r in requests if r.state is State.RUNNING)[:LIST_MAX],
        fleet=fleet,
        snoozes=tuple(snoozes.active(tables))[:LIST_MAX],
        owned=frozenset(b.table for b in fleet.broken if b.owners and approvers.among(user, b.owners)))
