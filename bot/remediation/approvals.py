"""Approval requests as a Redis state machine:

    requested -> approved -> running -> succeeded | failed
    requested -> rejected | expired | cancelled
    approved  -> expired (no worker started it in its window) | cancelled
    running   -> cancelled (only before its first change)

Every transition is one Lua script (atomic on the server, whatever the number of bot replicas, workers
or Slack retries) and appends to the audit stream in the same step. "Now" is the Redis server's own
clock (`TIME`), so replicas whose clocks disagree still agree on deadlines and leases.

A worker holds a running request by a lease and a fencing token: claiming increments the token, and
every step of the job checks, atomically with renewing the lease, that its token is still the
request's before it changes anything. A worker that lost its lease (it paused, or another worker took
over after it stopped renewing) learns so before its next side effect and stops.

One open request per table and fix kind: a slot key names the request that holds it, and a request
holds it only while it is open (requested before its deadline, approved within its start window, or
running). Whether the slot is free is decided from the holder's own record, in the same script that
creates the next request, so no ending transition has to remember to free it: a request that ended
in any way, expired, or vanished from Redis frees it by that fact alone, and one found overdue is
expired there and then (a crash of the bot or of the worker clock cannot hold the slot)."""
from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Callable, Self

from .. import metrics
from ..models import ActionKind
from ..redis_conn import Replication, confirmed
from .audit import MAXLEN, STREAM

log = logging.getLogger(__name__)

KEY_TTL_S = 7 * 24 * 3600  # requests stay readable for a week; the audit stream keeps the history
_REQ = "syncbot:req:{}"
_PEOPLE = "syncbot:req:{}:people"
_OFFER = "syncbot:offer-req:{}"
_LOCK = "syncbot:lock:table:{}"
_SLOT = "syncbot:open:{}:{}"  # table (lower case), fix kind -> the id of the request holding it
_SLOT_READS = 10  # the slot changed between reading it and the script this often in a row: say so


class State(StrEnum):
    REQUESTED = "requested"
    APPROVED = "approved"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def final(self) -> bool:
        return self in (State.SUCCEEDED, State.FAILED, State.REJECTED, State.EXPIRED, State.CANCELLED)


class Result(StrEnum):
    """What a script answered."""

    CREATED = "created"
    EXISTS = "exists"  # this offer already made a request
    MISSING = "missing"  # no such request (never made, expired from Redis, or Redis lost its data)
    WRONG_STATE = "state"
    EXPIRED = "expired"
    SELF = "self"
    ALREADY = "already"
    PLAN_CHANGED = "plan_changed"
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    CANCELLED = "cancelled"
    TOO_LATE = "too_late"  # a change already ran: cancelling now would leave it half done
    BUSY = "busy"  # another worker holds a live lease, or the request is not runnable
    LOCKED = "locked"  # another request holds the table's lock
    CLAIMED = "claimed"
    OK = "ok"
    LOST = "lost"  # the lease or the token is no longer this worker's
    OPEN = "open"  # a request for this table and fix is open: nothing was made
    FREE = "free"  # no open request for this table and fix
    RETRY = "retry"  # the slot changed after it was read; read it again


def _parts(raw: list) -> list[str]:
    """A script's reply {result, detail, value}, padded: scripts leave out what they have nothing for."""
    parts = [r.decode() if isinstance(r, bytes) else str(r) for r in raw]
    return parts + [""] * (3 - len(parts))


@dataclass(frozen=True)
class Created:
    """create: CREATED (a new request), OPEN (a request for this table and fix is open: nothing was
    made), or EXISTS (this offer's request ended: an old button); the request's id each time. RETRY
    only if the slot kept changing under it. The slot's look (ask) answers OPEN or FREE the same way."""

    result: Result
    request_id: str
    detail: str = ""  # OPEN: the open request's state; CREATED, EXISTS: an overdue request expired to make room

    @classmethod
    def of(cls, raw: list) -> Self:
        result, detail, request_id = _parts(raw)
        return cls(Result(result), request_id, detail)


@dataclass(frozen=True)
class Decided:
    """approve, reject, cancel, finish, expire: what happened, and `detail`: the state the request was
    in (WRONG_STATE, TOO_LATE, CANCELLED, LOST), or "have/need" people (PENDING)."""

    result: Result
    detail: str = ""

    @classmethod
    def of(cls, raw: list) -> Self:
        result, detail, _ = _parts(raw)
        return cls(Result(result), detail)


@dataclass(frozen=True)
class Claimed:
    """claim: CLAIMED with the new fencing token and the state it was claimed from; BUSY (with the
    state), LOCKED (with the request holding the table), EXPIRED or MISSING."""

    result: Result
    detail: str = ""
    token: str = ""

    @classmethod
    def of(cls, raw: list) -> Self:
        result, detail, token = _parts(raw)
        return cls(Result(result), detail, token)


@dataclass(frozen=True)
class Fenced:
    """fence: OK with Redis's time; LOST with the reason (taken over, lease lapsed, the state); MISSING."""

    result: Result
    reason: str = ""
    now: float = 0.0

    @classmethod
    def of(cls, raw: list) -> Self:
        result, reason, now = _parts(raw)
        return cls(Result(result), reason, float(now or 0))


# Shared by every script. KEYS[1] is always the request hash and the last KEYS entry the audit stream;
# ARGV[1] is always the stream's approximate MAXLEN.
_PRELUDE = """
local req = KEYS[1]
local stream = KEYS[#KEYS]
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local function audit_of(key, event, user, detail)
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[1], '*', 'at', tostring(now),
             'request', redis.call('HGET', key, 'id'), 'action', redis.call('HGET', key, 'action'),
             'table', redis.call('HGET', key, 'table'), 'event', event, 'user', user, 'detail', detail)
end
local function audit(event, user, detail) audit_of(req, event, user, detail) end
local function num(name) return tonumber(redis.call('HGET', req, name) or '0') end
"""

# Shared by _EXPIRE and _CREATE (after the prelude): ends the request at `key` if it is past its
# deadline (undecided) or its start window (approved, never started); returns the state it had, or nil.
_OVERDUE = """
local function expire_overdue(key)
  local state = redis.call('HGET', key, 'state')
  local function due(name) return tonumber(redis.call('HGET', key, name) or '0') <= now end
  if state == 'requested' and due('expires_at') then
    redis.call('HSET', key, 'state', 'expired', 'finished_at', tostring(now))
    audit_of(key, 'expired', 'syncbot', 'no decision before the deadline')
    return state
  end
  if state == 'approved' and due('start_by') then
    redis.call('HSET', key, 'state', 'expired', 'finished_at', tostring(now),
               'outcome', 'Approved, but no worker started it in time; nothing ran. Request it again.')
    audit_of(key, 'expired', 'syncbot', 'approved but not started within its window')
    return state
  end
  return nil
end
"""

# Shared by _ASK and _CREATE (after the prelude): is the table-and-fix slot held by an open request?
# `holder_key` is the record of the request the caller read in the slot (`holder_read`, '' if empty);
# if the slot names another one now, the caller reads again (RETRY), so every key stays declared.
# A refused ask by `asker` is recorded on the open request's trail.
_SLOT_CHECK = """
local function holds(key)
  local state = redis.call('HGET', key, 'state')
  local function before(name) return tonumber(redis.call('HGET', key, name) or '0') > now end
  if state == 'requested' then return before('expires_at') end
  if state == 'approved' then return before('start_by') end
  return state == 'running'  -- a lapsed lease too: a worker's recovery resumes it
end
local function already_open(slot, holder_key, holder_read, asker)
  local holder = redis.call('GET', slot)
  if (holder or '') ~= holder_read then return {'retry'} end
  if holder and holds(holder_key) then
    local state = redis.call('HGET', holder_key, 'state')
    if asker ~= '' then audit_of(holder_key, 'duplicate', asker, 'asked again while ' .. state .. '; nothing made') end
    return {'open', state, holder}
  end
  return nil
end
"""

# KEYS: holder's record (as read), slot, stream. ARGV: maxlen, holder id as read, asker ('' to only look).
_ASK = _PRELUDE + _SLOT_CHECK + """
return already_open(KEYS[2], KEYS[1], ARGV[2], ARGV[3]) or {'free'}
"""

# KEYS: request, people set, offer->request key, table-and-fix slot, slot holder's record as read (the
# new request's own key when the slot was empty), stream.
# ARGV: maxlen, id, key ttl s, requester, approval ttl s, slot holder id as read ('' if empty), k1, v1, ...
# One open request per table and fix kind first (an overdue holder is expired here), then once per offer
# (a button of an ended request stays used).
_CREATE = _PRELUDE + _OVERDUE + _SLOT_CHECK + """
local refused = already_open(KEYS[4], KEYS[5], ARGV[6], ARGV[4])
if refused then return refused end
local freed = ''
if ARGV[6] ~= '' and expire_overdue(KEYS[5]) then freed = ARGV[6] end
local existing = redis.call('GET', KEYS[3])
if existing then return {'exists', freed, existing} end
redis.call('SET', KEYS[3], ARGV[2], 'EX', ARGV[3])
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[3])
local fields = {'created_at', tostring(now), 'expires_at', tostring(now + tonumber(ARGV[5]))}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', req, unpack(fields))
redis.call('EXPIRE', req, ARGV[3])
redis.call('SADD', KEYS[2], ARGV[4])
redis.call('EXPIRE', KEYS[2], ARGV[3])
audit('requested', ARGV[4], redis.call('HGET', req, 'reason') or '')
-- A one-person fix is approved by asking for it (the requester is an approver, checked before).
if num('people') <= 1 then
  redis.call('HSET', req, 'state', 'approved', 'approved_at', tostring(now), 'approved_by', ARGV[4],
             'start_by', tostring(now + num('start_window_s')))
  audit('approved', ARGV[4], 'one approver suffices')
end
return {'created', freed, ARGV[2]}
"""

# KEYS: request, people set, stream. ARGV: maxlen, user, plan hash as it is now.
_APPROVE = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state ~= 'requested' then return {'state', state} end
if num('expires_at') <= now then
  redis.call('HSET', req, 'state', 'expired', 'finished_at', tostring(now))
  audit('expired', ARGV[2], 'approval came after the deadline')
  return {'expired'}
end
if redis.call('HGET', req, 'requester') == ARGV[2] then return {'self'} end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return {'already'} end
if redis.call('HGET', req, 'plan_hash') ~= ARGV[3] then
  redis.call('HSET', req, 'state', 'rejected', 'decided_by', 'syncbot', 'finished_at', tostring(now),
             'outcome', 'The plan changed since it was requested; request it again.')
  audit('rejected', ARGV[2], 'plan changed')
  return {'plan_changed'}
end
redis.call('SADD', KEYS[2], ARGV[2])
local approvers = redis.call('HGET', req, 'approved_by')
redis.call('HSET', req, 'approved_by', (approvers == '' and '' or approvers .. ',') .. ARGV[2])
audit('approval', ARGV[2], '')
local have = redis.call('SCARD', KEYS[2])
local need = num('people')
if have >= need then
  redis.call('HSET', req, 'state', 'approved', 'approved_at', tostring(now),
             'start_by', tostring(now + num('start_window_s')))
  audit('approved', ARGV[2], '')
  return {'approved'}
end
return {'pending', tostring(have) .. '/' .. tostring(need)}
"""

# KEYS: request, stream. ARGV: maxlen, user, reason.
_REJECT = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state ~= 'requested' then return {'state', state} end
redis.call('HSET', req, 'state', 'rejected', 'decided_by', ARGV[2], 'finished_at', tostring(now), 'outcome', ARGV[3])
audit('rejected', ARGV[2], ARGV[3])
return {'rejected'}
"""

# KEYS: request, table lock, stream. ARGV: maxlen, user.
# Before the first change a request can be called off; after it, stopping halfway would be worse.
_CANCEL = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state == 'running' and redis.call('HGET', req, 'changed') == '1' then return {'too_late', state} end
if state ~= 'requested' and state ~= 'approved' and state ~= 'running' then return {'state', state} end
redis.call('HSET', req, 'state', 'cancelled', 'decided_by', ARGV[2], 'finished_at', tostring(now),
           'outcome', 'Cancelled before anything ran.')
if redis.call('GET', KEYS[2]) == redis.call('HGET', req, 'id') then redis.call('DEL', KEYS[2]) end
audit('cancelled', ARGV[2], 'was ' .. state)
return {'cancelled', state}
"""

# KEYS: request, stream. ARGV: maxlen.
# Undecided past their deadline, or approved but never started by a worker within the start window.
_EXPIRE = _PRELUDE + _OVERDUE + """
local was = expire_overdue(req)
if was then return {'expired', was} end
return {'state', redis.call('HGET', req, 'state') or 'missing'}
"""

# KEYS: request, table lock, stream. ARGV: maxlen, worker, lease s, lock ttl s.
# Takes an approved request, or a running one whose worker stopped renewing its lease (a crash).
# Each claim hands out a new fencing token.
_CLAIM = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state == 'approved' then
  if num('start_by') <= now then
    redis.call('HSET', req, 'state', 'expired', 'finished_at', tostring(now),
               'outcome', 'Approved, but no worker started it in time; nothing ran. Request it again.')
    audit('expired', ARGV[2], 'approved but not started within its window')
    return {'expired'}
  end
elseif state ~= 'running' or num('lease_until') >= now then
  return {'busy', state}
end
local id = redis.call('HGET', req, 'id')
local holder = redis.call('GET', KEYS[2])
if holder and holder ~= id then
  local msg = 'Another action (request ' .. holder .. ') holds this table; nothing ran.'
  if state == 'running' then msg = 'Another action (request ' .. holder .. ') took this table mid-run.' end
  redis.call('HSET', req, 'state', 'failed', 'finished_at', tostring(now), 'outcome', msg)
  audit('failed', ARGV[2], msg)
  return {'locked', holder}
end
redis.call('SET', KEYS[2], id, 'EX', ARGV[4])
local token = redis.call('HINCRBY', req, 'fence', 1)
redis.call('HSET', req, 'state', 'running', 'worker', ARGV[2], 'lease_until', tostring(now + tonumber(ARGV[3])))
if state == 'approved' then
  redis.call('HSET', req, 'started_at', tostring(now))
  audit('running', ARGV[2], '')
elseif redis.call('HDEL', req, 'handed_over') == 1 then
  audit('resumed', ARGV[2], 'the previous worker handed it over as it shut down')
else
  audit('resumed', ARGV[2], 'the previous worker stopped renewing its lease')
end
return {'claimed', state, tostring(token)}
"""

# KEYS: request, table lock, stream.
# ARGV: maxlen, worker, token, lease s, lock ttl s, audit detail, changes ('1' before a side effect), k1, v1, ...
# The fence: renews the lease and records a checkpoint only while this worker's token is the request's
# and its lease has not lapsed. Returns the server's time (recorded as the intent before a call).
_FENCE = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state ~= 'running' then return {'lost', state} end
if redis.call('HGET', req, 'worker') ~= ARGV[2] or redis.call('HGET', req, 'fence') ~= ARGV[3] then
  return {'lost', 'taken over by ' .. (redis.call('HGET', req, 'worker') or '?')}
end
if num('lease_until') < now then return {'lost', 'lease lapsed'} end
local fields = {'lease_until', tostring(now + tonumber(ARGV[4]))}
if ARGV[7] == '1' then fields[#fields + 1] = 'changed'; fields[#fields + 1] = '1' end
for i = 8, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', req, unpack(fields))
if redis.call('GET', KEYS[2]) == redis.call('HGET', req, 'id') then redis.call('EXPIRE', KEYS[2], ARGV[5]) end
if ARGV[6] ~= '' then audit('step', ARGV[2], ARGV[6]) end
return {'ok', '', tostring(now)}
"""

# KEYS: request, table lock, stream. ARGV: maxlen, worker, token, final state, outcome.
_FINISH = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state ~= 'running' or redis.call('HGET', req, 'worker') ~= ARGV[2] or redis.call('HGET', req, 'fence') ~= ARGV[3] then
  return {'lost', state}
end
redis.call('HSET', req, 'state', ARGV[4], 'finished_at', tostring(now), 'outcome', ARGV[5], 'live', '')
if redis.call('GET', KEYS[2]) == redis.call('HGET', req, 'id') then redis.call('DEL', KEYS[2]) end
audit(ARGV[4], ARGV[2], ARGV[5])
return {'ok'}
"""

# KEYS: request, table lock, stream. ARGV: maxlen, worker, token, reason.
# A worker shutting down gives its lease back between two steps: the lease lapses now, so the next
# claim takes the request over at once instead of a lease later. The table's lock stays with it.
_RELEASE = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
local holds = redis.call('HGET', req, 'worker') == ARGV[2] and redis.call('HGET', req, 'fence') == ARGV[3]
if state ~= 'running' or not holds then return {'lost', state} end
redis.call('HSET', req, 'lease_until', tostring(now - 1), 'handed_over', '1')
audit('handed over', ARGV[2], ARGV[4])
return {'ok'}
"""

# KEYS: request. ARGV: grace s. Is the request waiting for a worker: running with a lapsed lease, or
# approved for longer than the grace without being claimed (its queue entry was lost)?
_STRANDED = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then
  return tonumber(redis.call('HGET', KEYS[1], 'lease_until') or '0') < now and 1 or 0
end
if state == 'approved' then
  return tonumber(redis.call('HGET', KEYS[1], 'approved_at') or '0') + tonumber(ARGV[1]) < now and 1 or 0
end
return 0
"""


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    action: ActionKind
    table: str
    requester: str
    people: int
    state: State
    created_at: float
    expires_at: float
    plan_steps: tuple[str, ...]
    plan_facts: tuple[str, ...]
    plan_hash: str
    plan_data: dict[str, Any]
    channel: str = ""
    thread: str = ""  # the chat thread the request belongs to (an opaque reference from the glue)
    message: str = ""  # the request's own message, drawn again at every transition
    reason: str = ""  # why the requester asked (required for fixes that need two people)
    approved_by: tuple[str, ...] = ()
    decided_by: str = ""
    outcome: str = ""
    progress: tuple[str, ...] = ()
    live: str = ""
    step_done: int = -1
    step_started: int = -1
    changed: bool = False  # a step with a side effect has started: too late to cancel
    approved_at: float = 0.0
    start_by: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)


_FLOATS = ("created_at", "expires_at", "approved_at", "start_by", "started_at", "finished_at")
_STRINGS = ("channel", "thread", "message", "reason", "decided_by", "outcome", "live")


def _decode(d: dict[str, str]) -> ApprovalRequest:
    known = set(ApprovalRequest.__dataclass_fields__)
    return ApprovalRequest(
        id=d["id"], action=ActionKind(d["action"]), table=d["table"], requester=d["requester"], people=int(d["people"]),
        state=State(d["state"]), plan_steps=tuple(json.loads(d["plan_steps"])),
        plan_facts=tuple(json.loads(d["plan_facts"])), plan_hash=d["plan_hash"], plan_data=json.loads(d["plan_data"]),
        approved_by=tuple(u for u in d.get("approved_by", "").split(",") if u),
        progress=tuple(json.loads(d.get("progress", "[]"))), step_done=int(d.get("step_done", -1)),
        step_started=int(d.get("step_started", -1)), changed=d.get("changed") == "1",
        **{k: float(d.get(k) or 0) for k in _FLOATS}, **{k: d.get(k, "") for k in _STRINGS},
        extra={k: v for k, v in d.items() if k not in known})


# (script, its answer) -> the transition it made, for syncbot_approvals_total.
_TRANSITIONS = {("create", "created"): "requested", ("approve", "approved"): "approved",
                ("approve", "pending"): "approval_recorded", ("reject", "rejected"): "rejected",
                ("cancel", "cancelled"): "cancelled", ("expire", "expired"): "expired",
                ("claim", "expired"): "expired", ("release", "ok"): "handed_over"}


def _count(script: str, reply: list[str], args: tuple) -> str:
    """Counts the transition the script made, if any, and names it."""
    result, label = reply[0] if reply else "", ""
    if script == "claim" and result == "claimed":
        label = "resumed" if len(reply) > 1 and reply[1] == "running" else "running"
        if label == "resumed":
            metrics.TAKEOVERS.inc()
    elif script == "finish" and result == "ok":
        label = str(args[2])  # the final state it recorded
    else:
        label = _TRANSITIONS.get((script, result), "")
    if label:
        metrics.APPROVALS.labels(label).inc()
    return label


class Approvals:
    def __init__(self, redis: Any, start_window_s: int = 900, replication: Replication = Replication()):
        self.redis = redis
        self.start_window_s = start_window_s  # approved requests a worker has not started by then expire
        # Every transition is confirmed by this many replicas before anyone is told or acts on it.
        self.replication = replication
        self._scripts = {name: redis.register_script(src) for name, src in (
            ("create", _CREATE), ("approve", _APPROVE), ("reject", _REJECT), ("cancel", _CANCEL),
            ("claim", _CLAIM), ("fence", _FENCE), ("finish", _FINISH), ("expire", _EXPIRE), ("ask", _ASK),
            ("release", _RELEASE))}
        self._stranded = redis.register_script(_STRANDED)

    def _run(self, name: str, keys: list[str], *args: Any) -> list:
        """One script, and WAIT behind it on the same connection when replicas must confirm it: raises
        NotConfirmed (a RedisError) when they do not, so every caller fails closed as on an outage."""
        script = self._scripts[name]
        raw = confirmed(self.redis, self.replication,
                        lambda target: script(keys=[*keys, STREAM], args=[MAXLEN, *args], client=target))
        transition = _count(name, _parts(raw) if isinstance(raw, list) else [], args)
        if transition:
            request_id = keys[0].rsplit(":", 1)[-1]
            log.info("request %s: %s", request_id, transition, extra={"request_id": request_id})
        return raw

    def create(self, *, offer_id: str, action: ActionKind, table: str, requester: str, people: int, ttl_s: int,
               steps: tuple[str, ...], facts: tuple[str, ...], plan_hash: str, data: dict[str, Any],
               channel: str, thread: str, reason: str = "") -> Created:
        """A new request, or the open one for this table and fix, or an old button's (see Created)."""
        request_id = secrets.token_urlsafe(12)
        fields = {"id": request_id, "action": action.value, "table": table, "requester": requester, "people": people,
                  "state": State.REQUESTED.value, "plan_steps": json.dumps(steps), "plan_facts": json.dumps(facts),
                  "plan_hash": plan_hash, "plan_data": json.dumps(data), "channel": channel, "thread": thread,
                  "reason": reason,
                  "approved_by": "", "progress": "[]", "step_done": -1, "step_started": -1, "lease_until": 0,
                  "fence": 0, "start_window_s": self.start_window_s}
        flat = [v for pair in fields.items() for v in pair]
        keys = [_REQ.format(request_id), _PEOPLE.format(request_id), _OFFER.format(offer_id)]
        return self._with_slot(table, action, lambda slot, holder: Created.of(self._run(
            "create", [*keys, slot, _REQ.format(holder or request_id)], request_id, KEY_TTL_S, requester, ttl_s,
            holder, *flat)))

    def open_request(self, table: str, action: ActionKind, asker: str = "") -> ApprovalRequest | None:
        """The open request for this table and fix kind, if any. An `asker` is refused by it: their ask
        is recorded on its audit trail in the same step."""
        reply = self._with_slot(table, action, lambda slot, holder: Created.of(self._run(
            "ask", [_REQ.format(holder), slot], holder, asker)) if holder else Created(Result.FREE, ""))
        request = self.get(reply.request_id) if reply.result is Result.OPEN else None
        return request if request is not None and not request.state.final else None  # it may have ended since

    def _with_slot(self, table: str, action: ActionKind, script: Callable[[str, str], Created]) -> Created:
        """Runs `script(slot key, holder id as read)` until the slot did not change in between."""
        slot = _SLOT.format(table.lower(), action.value)
        for _ in range(_SLOT_READS):
            holder = self.redis.get(slot)
            reply = script(slot, holder.decode() if holder else "")
            if reply.result is not Result.RETRY:
                break
        return reply

    def get(self, request_id: str) -> ApprovalRequest | None:
        if not isinstance(request_id, str) or not 8 <= len(request_id) <= 64:
            return None
        raw = self.redis.hgetall(_REQ.format(request_id))
        if not raw:
            return None
        return _decode({k.decode(): v.decode() for k, v in raw.items()})

    def for_offer(self, offer_id: str) -> ApprovalRequest | None:
        found = self.redis.get(_OFFER.format(offer_id))
        return self.get(found.decode()) if found else None

    def attach_message(self, request_id: str, channel: str, ts: str) -> None:
        self.redis.hset(_REQ.format(request_id), mapping={"channel": channel, "message": ts})

    def approve(self, request_id: str, user: str, plan_hash: str) -> Decided:
        return Decided.of(self._run("approve", [_REQ.format(request_id), _PEOPLE.format(request_id)], user, plan_hash))

    def reject(self, request_id: str, user: str, reason: str = "rejected") -> Decided:
        return Decided.of(self._run("reject", [_REQ.format(request_id)], user, reason))

    def cancel(self, request_id: str, table: str, user: str) -> Decided:
        return Decided.of(self._run("cancel", [_REQ.format(request_id), _LOCK.format(table.lower())], user))

    def claim(self, request_id: str, table: str, worker: str, lease_s: float, lock_ttl_s: int) -> Claimed:
        return Claimed.of(self._run("claim", [_REQ.format(request_id), _LOCK.format(table.lower())], worker,
                                    lease_s, lock_ttl_s))

    def fence(self, request_id: str, table: str, worker: str, token: str, lease_s: float, lock_ttl_s: int,
              detail: str = "", changes: bool = False, **fields: Any) -> Fenced:
        """OK while `token` still holds the request; LOST or MISSING otherwise. Renews the lease and
        writes `fields` in the same step."""
        flat = [str(v) for pair in fields.items() for v in pair]
        return Fenced.of(self._run("fence", [_REQ.format(request_id), _LOCK.format(table.lower())], worker, token,
                                   lease_s, lock_ttl_s, detail, "1" if changes else "0", *flat))

    def finish(self, request_id: str, table: str, worker: str, token: str, ok: bool, outcome: str) -> Decided:
        return Decided.of(self._run("finish", [_REQ.format(request_id), _LOCK.format(table.lower())], worker, token,
                                    State.SUCCEEDED.value if ok else State.FAILED.value, outcome))

    def release(self, request_id: str, table: str, worker: str, token: str, reason: str) -> Decided:
        """OK: the lease is given back (it lapses now) and the next claim takes the request over."""
        return Decided.of(self._run("release", [_REQ.format(request_id), _LOCK.format(table.lower())], worker, token,
                                    reason))

    def lock_holder(self, table: str) -> str | None:
        holder = self.redis.get(_LOCK.format(table.lower()))
        return holder.decode() if holder else None

    def expire_overdue(self) -> list[str]:
        """Requests past their deadline (undecided) or their start window (approved, never started)."""
        return [request_id for request_id in self._ids()
                if Decided.of(self._run("expire", [_REQ.format(request_id)])).result is Result.EXPIRED]

    def stranded(self, grace_s: float) -> list[str]:
        """Requests waiting for a worker: running with a lapsed lease (the worker died), or approved
        longer than `grace_s` ago and never claimed (the queue entry was lost)."""
        return [request_id for request_id in self._ids()
                if self._stranded(keys=[_REQ.format(request_id)], args=[grace_s])]

    def ids(self) -> list[str]:
        """Every request still stored (a week), for listings such as the App Home."""
        return self._ids()

    def _ids(self) -> list[str]:
        return [key.decode().rsplit(":", 1)[-1] for key in self.redis.scan_iter(match=_REQ.format("*"), count=500)
                if not key.endswith(b":people")]
