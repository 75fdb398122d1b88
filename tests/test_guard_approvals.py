"""The approval store's guards, each exercised on its own against real Redis: the Lua scripts are
the only place these rules live, so every test here goes through Approvals (two replicas = two
Approvals on separate Redis clients) and never writes a request, a lease or a lock by hand.
scripts/mutate.py deletes each guard in turn and expects one of these tests to fail."""
import os
import secrets
import threading
import time

import pytest
import redis as redis_lib

from bot.models import ActionKind
from bot.remediation.approvals import Approvals, Result, State

ALICE, BOB, CAROL = "U0ALICE01", "U0BOB0002", "U0CAROL03"
LOCK_TTL = 3600


def second_client():
    """Another connection to the test database, as a second replica has."""
    return redis_lib.Redis.from_url(os.environ.get("SYNCBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))


@pytest.fixture
def replicas(redis):
    """Two bot replicas: the same Redis database through two separate clients."""
    other = second_client()
    yield Approvals(redis), Approvals(other)
    other.close()


def create(approvals, *, people=1, table="orders", offer=None, ttl_s=3600, plan_hash="plan-1",
           action=ActionKind.PAUSE_PIPE, requester=ALICE):
    reply = approvals.create(offer_id=offer or secrets.token_hex(8), action=action, table=table, requester=requester,
                             people=people, ttl_s=ttl_s, steps=("ALTER PIPE",), facts=(), plan_hash=plan_hash,
                             data={"pipe": "STAGING.ORDERS_PIPE", "paused": True}, channel="C0INCIDNT",
                             thread="1.0")
    assert reply.result in (Result.CREATED, Result.EXISTS)
    return reply.request_id


def claim(approvals, request_id, worker, lease_s=30.0, table="orders"):
    return approvals.claim(request_id, table, worker, lease_s, LOCK_TTL)


def fence(approvals, request_id, worker, token, changes=False, table="orders"):
    return approvals.fence(request_id, table, worker, token, 30.0, LOCK_TTL, changes=changes)


def together(n, fn):
    """Runs fn(i) in n threads released at once by a barrier; returns the answers in thread order."""
    barrier, answers = threading.Barrier(n), [None] * n

    def run(i):
        barrier.wait()
        answers[i] = fn(i)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return answers


# -- once per offer ---------------------------------------------------------------------------------

def test_an_offer_makes_one_request_whatever_the_number_of_concurrent_creates(replicas, redis):
    """While its request is open, the table's one-open-request slot turns a second press away (OPEN);
    once it ended the slot is free, and the offer alone keeps an old button from making another."""
    offer = secrets.token_hex(8)

    def press(approvals, requester):
        return approvals.create(offer_id=offer, action=ActionKind.PAUSE_PIPE, table="orders", requester=requester,
                                people=1,
                                ttl_s=60, steps=(), facts=(), plan_hash="x", data={}, channel="C", thread="")

    first = together(8, lambda i: press(replicas[i % 2], (ALICE, BOB)[i % 2]))
    [request_id] = {a.request_id for a in first}
    assert sorted(a.result.value for a in first) == ["created"] + ["open"] * 7
    requests = [k for k in redis.scan_iter("syncbot:req:*") if not k.endswith(b":people")]
    assert requests == [f"syncbot:req:{request_id}".encode()]
    assert replicas[0].cancel(request_id, "orders", ALICE).result is Result.CANCELLED
    again = together(8, lambda i: press(replicas[i % 2], CAROL))
    assert {(a.result, a.request_id) for a in again} == {(Result.EXISTS, request_id)}
    assert [k for k in redis.scan_iter("syncbot:req:*") if not k.endswith(b":people")] == requests


# -- the claim ----------------------------------------------------------------------------------------

def test_claim_takes_only_an_approved_request_or_a_running_one_whose_lease_lapsed(replicas):
    approvals = replicas[0]
    undecided = create(approvals, people=2, table="payments")  # open alongside the others: another table
    assert claim(approvals, undecided, "w1").result is Result.BUSY
    assert approvals.get(undecided).state is State.REQUESTED
    for end in ("reject", "cancel"):
        request_id = create(approvals, people=2)
        getattr(approvals, end)(*((request_id, BOB) if end == "reject" else (request_id, "orders", ALICE)))
        assert claim(approvals, request_id, "w1").result is Result.BUSY
        assert approvals.get(request_id).state in (State.REJECTED, State.CANCELLED)
    done = create(approvals)
    token = claim(approvals, done, "w1").token
    assert approvals.finish(done, "orders", "w1", token, True, "ok").result is Result.OK
    assert claim(approvals, done, "w2").result is Result.BUSY
    assert approvals.get(done).state is State.SUCCEEDED


def test_concurrent_claims_on_two_replicas_give_the_request_to_one_worker(replicas):
    request_id = create(replicas[0])
    answers = together(8, lambda i: claim(replicas[i % 2], request_id, f"worker-{i}"))
    assert sorted(a.result.value for a in answers) == ["busy"] * 7 + ["claimed"]
    [winner] = [i for i, a in enumerate(answers) if a.result is Result.CLAIMED]
    assert replicas[1].get(request_id).extra["worker"] == f"worker-{winner}"


def test_a_live_lease_of_another_worker_is_not_taken_over(replicas):
    request_id = create(replicas[0])
    token = claim(replicas[0], request_id, "worker-a", lease_s=30).token
    assert claim(replicas[1], request_id, "worker-b").result is Result.BUSY
    assert fence(replicas[0], request_id, "worker-a", token).result is Result.OK  # still worker-a's


def test_a_lapsed_lease_is_taken_over_with_a_new_token_and_the_old_worker_is_fenced_off(replicas):
    a, b = replicas
    request_id = create(a)
    old = claim(a, request_id, "worker-a", lease_s=0.3)
    time.sleep(0.4)
    new = claim(b, request_id, "worker-b")
    assert (new.result, new.detail) == (Result.CLAIMED, "running") and int(new.token) == int(old.token) + 1
    # worker-a wakes up: it can neither checkpoint, nor renew, nor finish; worker-b's record is intact.
    assert fence(a, request_id, "worker-a", old.token, changes=True).result is Result.LOST
    assert a.finish(request_id, "orders", "worker-a", old.token, False, "I was paused").result is Result.LOST
    request = b.get(request_id)
    assert (request.state, request.extra["worker"], request.changed) == (State.RUNNING, "worker-b", False)
    assert fence(b, request_id, "worker-b", new.token).result is Result.OK


def test_a_stale_token_of_the_same_worker_is_refused(replicas):
    """A worker process that claimed twice (a redelivery after its own lease lapsed) holds only the
    newest token: the older run inside it is fenced off by the token, not the worker name."""
    a, _ = replicas
    request_id = create(a)
    old = claim(a, request_id, "worker-a", lease_s=0.3)
    time.sleep(0.4)
    new = claim(a, request_id, "worker-a")
    assert fence(a, request_id, "worker-a", old.token).result is Result.LOST
    assert a.finish(request_id, "orders", "worker-a", old.token, True, "done").result is Result.LOST
    assert fence(a, request_id, "worker-a", new.token).result is Result.OK


def test_a_lease_that_lapsed_without_a_takeover_fails_the_fence(replicas):
    a, _ = replicas
    request_id = create(a)
    token = claim(a, request_id, "worker-a", lease_s=0.3).token
    time.sleep(0.4)
    reply = fence(a, request_id, "worker-a", token, changes=True)
    assert (reply.result, reply.reason) == (Result.LOST, "lease lapsed")
    assert not a.get(request_id).changed  # the side effect was not recorded as started


def test_the_fence_says_missing_when_the_record_vanished(replicas, redis):
    a, _ = replicas
    request_id = create(a)
    token = claim(a, request_id, "worker-a").token
    redis.delete(f"syncbot:req:{request_id}", f"syncbot:req:{request_id}:people")  # Redis lost its data
    assert fence(a, request_id, "worker-a", token).result is Result.MISSING
    assert a.finish(request_id, "orders", "worker-a", token, True, "ok").result is Result.MISSING


# -- the table lock -----------------------------------------------------------------------------------

def test_the_claim_takes_the_table_lock_and_honours_another_requests(replicas):
    a, b = replicas
    resync = create(a, action=ActionKind.RESYNC)
    token = claim(a, resync, "worker-a").token
    assert a.lock_holder("ORDERS") == resync  # taken by the claim itself
    quick = create(b, action=ActionKind.PAUSE_PIPE)
    reply = claim(b, quick, "worker-b")
    assert (reply.result, reply.detail) == (Result.LOCKED, resync)
    refused = b.get(quick)
    assert refused.state is State.FAILED and f"request {resync}) holds this table; nothing ran" in refused.outcome
    assert a.finish(resync, "orders", "worker-a", token, True, "done").result is Result.OK
    assert a.lock_holder("orders") is None  # released at the end
    other = create(b)
    assert claim(b, other, "worker-b").result is Result.CLAIMED


# -- cancel ----------------------------------------------------------------------------------------------

def test_cancel_before_the_first_change_stops_the_worker_and_frees_the_table(replicas):
    a, b = replicas
    request_id = create(a)
    token = claim(a, request_id, "worker-a").token
    assert fence(a, request_id, "worker-a", token, changes=False).result is Result.OK  # a read-only step
    assert b.cancel(request_id, "orders", BOB).result is Result.CANCELLED
    assert fence(a, request_id, "worker-a", token, changes=True).result is Result.LOST
    assert a.lock_holder("orders") is None and a.get(request_id).state is State.CANCELLED


def test_cancel_after_the_first_change_is_too_late(replicas):
    a, b = replicas
    request_id = create(a)
    token = claim(a, request_id, "worker-a").token
    assert fence(a, request_id, "worker-a", token, changes=True).result is Result.OK
    assert b.cancel(request_id, "orders", BOB).result is Result.TOO_LATE
    assert a.get(request_id).state is State.RUNNING and a.lock_holder("orders") == request_id
    assert fence(a, request_id, "worker-a", token).result is Result.OK


# -- approve -------------------------------------------------------------------------------------------

def test_approve_refuses_the_requester_and_a_changed_plan(replicas):
    a, b = replicas
    request_id = create(a, people=2, plan_hash="plan-1")
    assert a.approve(request_id, ALICE, "plan-1").result is Result.SELF
    assert a.get(request_id).state is State.REQUESTED
    assert b.approve(request_id, BOB, "plan-2").result is Result.PLAN_CHANGED
    assert a.get(request_id).state is State.REJECTED
    fine = create(a, people=2, plan_hash="plan-1")
    assert b.approve(fine, BOB, "plan-1").result is Result.APPROVED


def test_concurrent_approvals_approve_once(replicas, redis):
    request_id = create(replicas[0], people=2)
    answers = together(8, lambda i: replicas[i % 2].approve(request_id, (BOB, CAROL)[i % 2], "plan-1"))
    results = sorted(a.result.value for a in answers)
    assert results.count("approved") == 1 and set(results) <= {"approved", "already", "state"}


# -- windows: the Redis server's clock, never the process's ---------------------------------------------

def test_an_approved_request_not_started_within_its_window_expires_by_claim_or_by_clock(redis):
    approvals = Approvals(redis, start_window_s=1)
    claimed_late, swept = create(approvals), create(approvals, table="payments")
    time.sleep(1.1)
    reply = claim(approvals, claimed_late, "worker-a")
    assert reply.result is Result.EXPIRED
    late = approvals.get(claimed_late)
    assert late.state is State.EXPIRED and "no worker started it in time; nothing ran" in late.outcome
    assert approvals.lock_holder("orders") is None
    assert approvals.expire_overdue() == [swept]
    assert approvals.get(swept).state is State.EXPIRED and claim(approvals, swept, "worker-a").result is Result.BUSY


def test_a_process_clock_far_ahead_takes_over_no_live_lease(replicas, monkeypatch):
    a, b = replicas
    request_id = create(a)
    token = claim(a, request_id, "worker-a", lease_s=30).token
    monkeypatch.setattr(time, "time", lambda: 4_000_000_000.0)  # year 2096
    assert claim(b, request_id, "worker-b").result is Result.BUSY
    assert b.stranded(grace_s=0) == []
    assert fence(a, request_id, "worker-a", token).result is Result.OK


def test_a_process_clock_far_behind_approves_no_expired_request(replicas, monkeypatch):
    a, b = replicas
    request_id = create(a, people=2, ttl_s=1)
    time.sleep(1.1)
    monkeypatch.setattr(time, "time", lambda: 1_000_000_000.0)  # 2001: "the deadline is far away"
    assert b.approve(request_id, BOB, "plan-1").result is Result.EXPIRED
    assert a.get(request_id).state is State.EXPIRED
