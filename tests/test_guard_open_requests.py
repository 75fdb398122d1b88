"""One open request per table and fix kind, against real Redis through Approvals only (two replicas =
two Approvals on separate Redis clients): concurrent asks make one request and are pointed to it,
every way a request ends frees the slot, and nothing (an overdue request, a vanished record, a dead
worker clock) holds it longer than the request is open. scripts/mutate.py deletes each guard in turn
and expects one of these tests to fail."""
import secrets
import time

import pytest

from bot.models import ActionKind
from bot.remediation import audit
from bot.remediation.approvals import KEY_TTL_S, Approvals, Result, State
from test_guard_approvals import ALICE, BOB, CAROL, LOCK_TTL, claim, fence, replicas, second_client, together  # noqa: F401

DAVE = "U0DAVE004"


RESYNC, PAUSE = ActionKind.RESYNC, ActionKind.PAUSE_PIPE


def ask(approvals, *, action=RESYNC, table="orders", requester=ALICE, people=2, ttl_s=3600, plan_hash="plan-1",
        offer=None):
    return approvals.create(offer_id=offer or secrets.token_hex(8), action=action, table=table, requester=requester,
                            people=people, ttl_s=ttl_s, steps=("TRUNCATE",), facts=(), plan_hash=plan_hash,
                            data={"table": table}, channel="C0INCIDNT", thread="1.0")


def made(approvals, **kwargs):
    reply = ask(approvals, **kwargs)
    assert reply.result is Result.CREATED, reply
    return reply.request_id


def requests(redis):
    return sorted(k.decode().rsplit(":", 1)[-1] for k in redis.scan_iter("syncbot:req:*")
                  if not k.endswith(b":people"))


def duplicates(redis):
    return [(e.request, e.user, e.detail) for e in audit.read(redis) if e.event == "duplicate"]


# -- concurrent asks ------------------------------------------------------------------------------------

def test_concurrent_asks_on_two_replicas_make_one_request_and_point_the_rest_to_it(replicas, redis):
    people = (ALICE, BOB, CAROL, DAVE)
    answers = together(8, lambda i: ask(replicas[i % 2], requester=people[i % 4]))
    created = [a for a in answers if a.result is Result.CREATED]
    assert len(created) == 1, answers
    [request_id] = requests(redis)
    assert created[0].request_id == request_id
    refused = [a for a in answers if a is not created[0]]
    assert {(a.result, a.detail, a.request_id) for a in refused} == {(Result.OPEN, "requested", request_id)}
    assert len(duplicates(redis)) == 7 and {d[0] for d in duplicates(redis)} == {request_id}


def test_two_concurrent_asks_make_one_request_and_one_pointer(replicas, redis):
    answers = together(2, lambda i: ask(replicas[i], requester=(ALICE, BOB)[i]))
    assert sorted(a.result.value for a in answers) == ["created", "open"]
    assert len(requests(redis)) == 1 and answers[0].request_id == answers[1].request_id


def test_a_slot_read_that_went_stale_before_the_script_is_read_again(replicas, redis, monkeypatch):
    """Replica b reads an empty slot, then replica a's request takes it before b's script runs: b's
    script must see the slot changed and read again, never create over it."""
    a, b = replicas
    real_get, raced = b.redis.get, []

    def get(key):
        value = real_get(key)
        if key.startswith("syncbot:open:") and not raced:
            raced.append(made(a))  # lands between b's read and b's script
        return value

    monkeypatch.setattr(b.redis, "get", get)
    reply = ask(b, requester=BOB)
    assert (reply.result, reply.request_id) == (Result.OPEN, raced[0])
    assert requests(redis) == [raced[0]]


def test_different_fix_kinds_and_tables_stay_independent(replicas):
    a, b = replicas
    resync = made(a)
    pause = made(b, action=PAUSE, people=1)  # a quick fix while the re-sync is requested
    other_table = made(b, table="payments")
    assert len({resync, pause, other_table}) == 3
    assert ask(a, action=PAUSE, people=1, requester=BOB).request_id == pause  # approved: still open
    assert a.open_request("ORDERS", RESYNC).id == resync  # table names as in the lock: case-blind
    assert a.open_request("orders", ActionKind.RESTART_TASK) is None


def test_only_an_asker_is_recorded_on_the_open_requests_trail(replicas, redis):
    a, _ = replicas
    request_id = made(a)
    assert a.open_request("orders", RESYNC).id == request_id  # a look (the quick fix's note) records nothing
    assert duplicates(redis) == []
    assert a.open_request("orders", RESYNC, asker=BOB).id == request_id
    assert duplicates(redis) == [(request_id, BOB, "asked again while requested; nothing made")]


# -- every end frees the slot ---------------------------------------------------------------------------

def _succeed(a, request_id):
    token = claim(a, request_id, "w1").token
    assert a.finish(request_id, "orders", "w1", token, True, "done").result is Result.OK


def _fail(a, request_id):
    token = claim(a, request_id, "w1").token
    assert fence(a, request_id, "w1", token, changes=True).result is Result.OK
    assert a.finish(request_id, "orders", "w1", token, False, "DMS refused").result is Result.OK


def _cancel_running(a, request_id):
    claim(a, request_id, "w1")
    assert a.cancel(request_id, "orders", BOB).result is Result.CANCELLED


def _lose_the_table(a, request_id):
    holder = made(a, action=PAUSE, people=1)
    claim(a, holder, "w-other")  # another fix holds the table's lock
    assert claim(a, request_id, "w1").result is Result.LOCKED


ENDS = {
    "succeeded": (_succeed, State.SUCCEEDED, 1),
    "failed": (_fail, State.FAILED, 1),
    "rejected": (lambda a, r: a.reject(r, BOB), State.REJECTED, 2),
    "withdrawn": (lambda a, r: a.reject(r, ALICE, "withdrawn"), State.REJECTED, 2),
    "plan changed": (lambda a, r: a.approve(r, BOB, "plan-2"), State.REJECTED, 2),
    "cancelled while requested": (lambda a, r: a.cancel(r, "orders", ALICE), State.CANCELLED, 2),
    "cancelled while approved": (lambda a, r: a.cancel(r, "orders", ALICE), State.CANCELLED, 1),
    "cancelled while running": (_cancel_running, State.CANCELLED, 1),
    "locked out": (_lose_the_table, State.FAILED, 1),
}


@pytest.mark.parametrize("end", ENDS)
def test_every_way_a_request_ends_frees_the_slot(replicas, end):
    a, b = replicas
    finish, final, people = ENDS[end]
    first = made(a, people=people)
    assert ask(b, people=people, requester=BOB).result is Result.OPEN  # held while open
    finish(a, first)
    assert a.get(first).state is final
    again = ask(b, people=people, requester=BOB)
    assert again.result is Result.CREATED and again.request_id != first
    assert ask(a, people=people, requester=CAROL).request_id == again.request_id  # and the new one holds it


def test_expiry_by_the_clock_frees_the_slot(redis):
    approvals = Approvals(redis, start_window_s=1)
    undecided, approved = made(approvals, ttl_s=1), made(approvals, table="payments", people=1)
    time.sleep(1.1)
    assert sorted(approvals.expire_overdue()) == sorted([undecided, approved])
    for table in ("orders", "payments"):
        assert ask(approvals, table=table, people=1 if table == "payments" else 2).result is Result.CREATED


@pytest.mark.parametrize("people, overdue", [(2, "requested"), (1, "approved")])
def test_an_overdue_request_is_expired_by_the_next_ask_without_the_clock(redis, people, overdue):
    """No worker clock ran (every worker down): the next ask finds the holder past its deadline or start
    window, expires it in the same step, and makes the new request."""
    approvals = Approvals(redis, start_window_s=1)
    first = made(approvals, people=people, ttl_s=1)
    assert approvals.get(first).state.value == overdue
    time.sleep(1.1)
    assert approvals.open_request("orders", RESYNC) is None  # the quick look agrees before anything changed
    reply = ask(approvals, people=people, requester=BOB)
    assert (reply.result, reply.detail) == (Result.CREATED, first) and reply.request_id != first
    assert approvals.get(first).state is State.EXPIRED
    trail = [(e.request, e.event) for e in reversed(audit.read(redis))]
    assert trail.index((first, "expired")) < trail.index((reply.request_id, "requested"))
    assert claim(approvals, first, "w1").result is Result.BUSY  # and it can never run now


def test_a_vanished_record_frees_the_slot(replicas, redis):
    a, b = replicas
    first = made(a)
    redis.delete(f"syncbot:req:{first}", f"syncbot:req:{first}:people")  # Redis lost it (no persistence)
    assert a.open_request("orders", RESYNC) is None
    assert ask(b, requester=BOB).result is Result.CREATED


def test_a_running_request_whose_worker_died_still_holds_the_slot(replicas):
    """Its lease lapsed, but a worker's recovery resumes it from its checkpoint: a second request
    would truncate and reload the table again behind it."""
    a, b = replicas
    first = made(a, people=1)
    claim(a, first, "w-dead", lease_s=0.2)
    time.sleep(0.3)
    reply = ask(b, people=1, requester=BOB)
    assert (reply.result, reply.detail, reply.request_id) == (Result.OPEN, "running", first)
    token = claim(b, first, "w-alive").token  # recovery takes it over and ends it
    assert b.finish(first, "orders", "w-alive", token, True, "done").result is Result.OK
    assert ask(b, people=1, requester=BOB).result is Result.CREATED


def test_the_slot_lives_no_longer_than_a_request_record(replicas, redis):
    a, _ = replicas
    made(a)
    [slot] = list(redis.scan_iter("syncbot:open:*"))
    assert slot == b"syncbot:open:orders:resync" and 0 < redis.ttl(slot) <= KEY_TTL_S


def test_an_old_button_of_an_ended_request_stays_used(replicas):
    a, b = replicas
    offer = secrets.token_hex(8)
    first = made(a, offer=offer)
    a.reject(first, BOB)
    again = ask(b, offer=offer, requester=BOB)
    assert (again.result, again.request_id) == (Result.EXISTS, first)
    assert b.open_request("orders", RESYNC) is None  # and the old button made nothing
