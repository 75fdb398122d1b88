"""Approval requests as a Redis state machine:

    requested -> approved -> running -> succeeded | failed
    requested -> rejected | expired

Every transition is one Lua script (atomic on the server, whatever the number of bot replicas or
Slack retries) and appends to the audit stream in the same step. Nothing lives in process memory."""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .audit import MAXLEN, STREAM

KEY_TTL_S = 7 * 24 * 3600  # requests stay readable for a week; the audit stream keeps the history
_REQ = "syncbot:req:{}"
_PEOPLE = "syncbot:req:{}:people"
_OFFER = "syncbot:offer-req:{}"
_LOCK = "syncbot:lock:table:{}"

# Shared by every script. KEYS[1] is always the request hash and the last KEYS entry the audit stream;
# ARGV[1] is always "now" (epoch seconds) and ARGV[2] the stream's approximate MAXLEN.
_PRELUDE = """
local req = KEYS[1]
local stream = KEYS[#KEYS]
local now = ARGV[1]
local function audit(event, user, detail)
  redis.call('XADD', stream, 'MAXLEN', '~', ARGV[2], '*', 'at', now,
             'request', redis.call('HGET', req, 'id'), 'action', redis.call('HGET', req, 'action'),
             'table', redis.call('HGET', req, 'table'), 'event', event, 'user', user, 'detail', detail)
end
"""

# KEYS: request, people set, offer->request key, stream. ARGV: now, maxlen, id, ttl, requester, k1, v1, ...
_CREATE = _PRELUDE + """
local existing = redis.call('GET', KEYS[3])
if existing then return {'exists', existing} end
redis.call('SET', KEYS[3], ARGV[3], 'EX', ARGV[4])
local fields = {}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', req, unpack(fields))
redis.call('EXPIRE', req, ARGV[4])
redis.call('SADD', KEYS[2], ARGV[5])
redis.call('EXPIRE', KEYS[2], ARGV[4])
audit('requested', ARGV[5], '')
-- A one-person fix is approved by asking for it (the requester is an approver, checked before).
if tonumber(redis.call('HGET', req, 'people')) <= 1 then
  redis.call('HSET', req, 'state', 'approved', 'approved_at', now, 'approved_by', ARGV[5])
  audit('approved', ARGV[5], 'one approver suffices')
end
return {'created', ARGV[3]}
"""

# KEYS: request, people set, stream. ARGV: now, maxlen, user, plan hash as it is now.
_APPROVE = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state ~= 'requested' then return {'state', state} end
if tonumber(redis.call('HGET', req, 'expires_at')) <= tonumber(now) then
  redis.call('HSET', req, 'state', 'expired', 'finished_at', now)
  audit('expired', ARGV[3], 'approval came after the deadline')
  return {'expired'}
end
if redis.call('HGET', req, 'requester') == ARGV[3] then return {'self'} end
if redis.call('SISMEMBER', KEYS[2], ARGV[3]) == 1 then return {'already'} end
if redis.call('HGET', req, 'plan_hash') ~= ARGV[4] then
  redis.call('HSET', req, 'state', 'rejected', 'decided_by', 'syncbot', 'finished_at', now,
             'outcome', 'The plan changed since it was requested; request it again.')
  audit('rejected', ARGV[3], 'plan changed')
  return {'plan_changed'}
end
redis.call('SADD', KEYS[2], ARGV[3])
local approvers = redis.call('HGET', req, 'approved_by')
redis.call('HSET', req, 'approved_by', (approvers == '' and '' or approvers .. ',') .. ARGV[3])
audit('approval', ARGV[3], '')
local have = redis.call('SCARD', KEYS[2])
local need = tonumber(redis.call('HGET', req, 'people'))
if have >= need then
  redis.call('HSET', req, 'state', 'approved', 'approved_at', now)
  audit('approved', ARGV[3], '')
  return {'approved'}
end
return {'pending', tostring(have), tostring(need)}
"""

# KEYS: request, stream. ARGV: now, maxlen, user, reason.
_REJECT = _PRELUDE + """
if redis.call('EXISTS', req) == 0 then return {'missing'} end
local state = redis.call('HGET', req, 'state')
if state ~= 'requested' then return {'state', state} end
redis.call('HSET', req, 'state', 'rejected', 'decided_by', ARGV[3], 'finished_at', now, 'outcome', ARGV[4])
audit('rejected', ARGV[3], ARGV[4])
return {'rejected'}
"""

# KEYS: request, stream. ARGV: now, maxlen.
_EXPIRE = _PRELUDE + """
if redis.call('HGET', req, 'state') ~= 'requested' then return 0 end
if tonumber(redis.call('HGET', req, 'expires_at')) > tonumber(now) then return 0 end
redis.call('HSET', req, 'state', 'expired', 'finished_at', now)
audit('expired', 'syncbot', 'no decision before the deadline')
return 1
"""

# KEYS: request, table lock, stream. ARGV: now, maxlen, worker, lease s, lock ttl s (0: no lock).
# Takes an approved request, or a running one whose worker stopped renewing its lease (a crash).
_CLAIM = _PRELUDE + """
local state = redis.call('HGET', req, 'state')
local lease = tonumber(redis.call('HGET', req, 'lease_until') or '0')
if not (state == 'approved' or (state == 'running' and lease < tonumber(now))) then
  return {'busy', state or 'missing'}
end
local id = redis.call('HGET', req, 'id')
if ARGV[5] ~= '0' then
  local holder = redis.call('GET', KEYS[2])
  if holder and holder ~= id then
    local msg = 'Another destructive action (request ' .. holder .. ') is running on this table.'
    redis.call('HSET', req, 'state', 'failed', 'finished_at', now, 'outcome', msg)
    audit('failed', ARGV[3], msg)
    return {'locked', holder}
  end
  redis.call('SET', KEYS[2], id, 'EX', ARGV[5])
end
redis.call('HSET', req, 'state', 'running', 'worker', ARGV[3], 'lease_until', tostring(tonumber(now) + tonumber(ARGV[4])))
if state == 'approved' then
  redis.call('HSET', req, 'started_at', now)
  audit('running', ARGV[3], '')
else
  audit('resumed', ARGV[3], 'previous worker stopped renewing its lease')
end
return {'claimed', state}
"""

# KEYS: request, table lock, stream. ARGV: now, maxlen, worker, lease s, lock ttl s, audit detail, k1, v1, ...
_CHECKPOINT = _PRELUDE + """
if redis.call('HGET', req, 'state') ~= 'running' or redis.call('HGET', req, 'worker') ~= ARGV[3] then return 0 end
local fields = {'lease_until', tostring(tonumber(now) + tonumber(ARGV[4]))}
for i = 7, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('HSET', req, unpack(fields))
if ARGV[5] ~= '0' and redis.call('GET', KEYS[2]) == redis.call('HGET', req, 'id') then
  redis.call('EXPIRE', KEYS[2], ARGV[5])
end
if ARGV[6] ~= '' then audit('step', ARGV[3], ARGV[6]) end
return 1
"""

# KEYS: request, table lock, stream. ARGV: now, maxlen, worker, final state, outcome.
_FINISH = _PRELUDE + """
if redis.call('HGET', req, 'state') ~= 'running' or redis.call('HGET', req, 'worker') ~= ARGV[3] then return 0 end
redis.call('HSET', req, 'state', ARGV[4], 'finished_at', now, 'outcome', ARGV[5])
if redis.call('GET', KEYS[2]) == redis.call('HGET', req, 'id') then redis.call('DEL', KEYS[2]) end
audit(ARGV[4], ARGV[3], ARGV[5])
return 1
"""


@dataclass(frozen=True)
class ApprovalRequest:
    id: str
    action: str
    table: str
    requester: str
    people: int
    state: str
    created_at: float
    expires_at: float
    plan_steps: tuple[str, ...]
    plan_facts: tuple[str, ...]
    plan_hash: str
    plan_data: dict[str, Any]
    channel: str = ""
    thread_ts: str = ""
    message_ts: str = ""
    approved_by: tuple[str, ...] = ()
    decided_by: str = ""
    outcome: str = ""
    progress: tuple[str, ...] = ()
    step_done: int = -1
    step_started: int = -1
    approved_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def open(self) -> bool:
        return self.state == "requested"


class Approvals:
    def __init__(self, redis: Any, clock: Callable[[], float] = time.time):
        self.redis = redis
        self._clock = clock
        self._scripts = {name: redis.register_script(src) for name, src in (
            ("create", _CREATE), ("approve", _APPROVE), ("reject", _REJECT), ("claim", _CLAIM),
            ("checkpoint", _CHECKPOINT), ("finish", _FINISH), ("expire", _EXPIRE))}

    def _run(self, name: str, keys: list[str], *args: Any) -> Any:
        result = self._scripts[name](keys=[*keys, STREAM], args=[repr(self._clock()), MAXLEN, *args])
        return [r.decode() if isinstance(r, bytes) else r for r in result] if isinstance(result, list) else result

    def create(self, *, offer_id: str, action: str, table: str, requester: str, people: int, ttl_s: int,
               steps: tuple[str, ...], facts: tuple[str, ...], plan_hash: str, data: dict[str, Any],
               channel: str, thread_ts: str) -> tuple[bool, str]:
        """A new request, or the one this offer already made (a double click, a Slack retry)."""
        request_id = secrets.token_urlsafe(12)
        now = self._clock()
        fields = {"id": request_id, "action": action, "table": table, "requester": requester, "people": people,
                  "state": "requested", "created_at": repr(now), "expires_at": repr(now + ttl_s),
                  "plan_steps": json.dumps(steps), "plan_facts": json.dumps(facts), "plan_hash": plan_hash,
                  "plan_data": json.dumps(data), "channel": channel, "thread_ts": thread_ts, "approved_by": "",
                  "progress": "[]", "step_done": -1, "step_started": -1, "lease_until": 0}
        flat = [v for pair in fields.items() for v in pair]
        status, found = self._run("create", [_REQ.format(request_id), _PEOPLE.format(request_id),
                                             _OFFER.format(offer_id)], request_id, KEY_TTL_S, requester, *flat)
        return status == "created", found

    def get(self, request_id: str) -> ApprovalRequest | None:
        if not isinstance(request_id, str) or not 8 <= len(request_id) <= 64:
            return None
        raw = self.redis.hgetall(_REQ.format(request_id))
        if not raw:
            return None
        d = {k.decode(): v.decode() for k, v in raw.items()}
        known = set(ApprovalRequest.__dataclass_fields__)
        return ApprovalRequest(
            id=d["id"], action=d["action"], table=d["table"], requester=d["requester"], people=int(d["people"]),
            state=d["state"], created_at=float(d["created_at"]), expires_at=float(d["expires_at"]),
            plan_steps=tuple(json.loads(d["plan_steps"])), plan_facts=tuple(json.loads(d["plan_facts"])),
            plan_hash=d["plan_hash"], plan_data=json.loads(d["plan_data"]), channel=d.get("channel", ""),
            thread_ts=d.get("thread_ts", ""), message_ts=d.get("message_ts", ""),
            approved_by=tuple(u for u in d.get("approved_by", "").split(",") if u),
            decided_by=d.get("decided_by", ""), outcome=d.get("outcome", ""),
            progress=tuple(json.loads(d.get("progress", "[]"))), step_done=int(d.get("step_done", -1)),
            step_started=int(d.get("step_started", -1)), approved_at=float(d.get("approved_at", 0)),
            started_at=float(d.get("started_at", 0)), finished_at=float(d.get("finished_at", 0)),
            extra={k: v for k, v in d.items() if k not in known})

    def for_offer(self, offer_id: str) -> ApprovalRequest | None:
        found = self.redis.get(_OFFER.format(offer_id))
        return self.get(found.decode()) if found else None

    def attach_message(self, request_id: str, channel: str, ts: str) -> None:
        self.redis.hset(_REQ.format(request_id), mapping={"channel": channel, "message_ts": ts})

    def approve(self, request_id: str, user: str, plan_hash: str) -> list[str]:
        return self._run("approve", [_REQ.format(request_id), _PEOPLE.format(request_id)], user, plan_hash)

    def reject(self, request_id: str, user: str, reason: str = "rejected") -> list[str]:
        return self._run("reject", [_REQ.format(request_id)], user, reason)

    def claim(self, request_id: str, table: str, worker: str, lease_s: int, lock_ttl_s: int) -> list[str]:
        return self._run("claim", [_REQ.format(request_id), _LOCK.format(table.lower())], worker, lease_s, lock_ttl_s)

    def checkpoint(self, request_id: str, table: str, worker: str, lease_s: int, lock_ttl_s: int,
                   detail: str = "", **fields: Any) -> bool:
        flat = [str(v) for pair in fields.items() for v in pair]
        return bool(self._run("checkpoint", [_REQ.format(request_id), _LOCK.format(table.lower())],
                              worker, lease_s, lock_ttl_s, detail, *flat))

    def finish(self, request_id: str, table: str, worker: str, ok: bool, outcome: str) -> bool:
        return bool(self._run("finish", [_REQ.format(request_id), _LOCK.format(table.lower())],
                              worker, "succeeded" if ok else "failed", outcome))

    def lock_holder(self, table: str) -> str | None:
        holder = self.redis.get(_LOCK.format(table.lower()))
        return holder.decode() if holder else None

    def expire_overdue(self) -> list[str]:
        """Requests past their deadline with no decision become expired, so their buttons can go."""
        expired = []
        for request_id in self._ids():
            if self._run("expire", [_REQ.format(request_id)]):
                expired.append(request_id)
        return expired

    def _ids(self) -> list[str]:
        return [key.decode().rsplit(":", 1)[-1] for key in self.redis.scan_iter(match=_REQ.format("*"), count=500)
                if not key.endswith(b":people")]

    def unfinished(self, action: str) -> list[str]:
        """Ids of `action` requests approved or running: at worker start, the ones a dead worker left
        (resumed once its lease runs out) or whose enqueueing was lost (the bot died right after approval)."""
        ids = []
        for request_id in self._ids():
            state, kind = self.redis.hmget(_REQ.format(request_id), "state", "action")
            if kind == action.encode() and state in (b"approved", b"running"):
                ids.append(request_id)
        return ids
