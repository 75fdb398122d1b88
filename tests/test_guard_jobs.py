"""The job engine's guards against real faults: workers killed mid-step, a slow statement outliving
its lease, Redis losing the request, the queue refusing a job, a network error from AWS. Each worker
is a Runtime of its own with its own Redis client (another replica); the fixes run on the
sandbox pipeline (moto's DMS, fakesnow) exactly as in production. scripts/mutate.py deletes each
guard in turn and expects one of these tests to fail."""
import functools
import json
import threading
import time

import pytest
from botocore.exceptions import EndpointConnectionError
from redis.exceptions import ConnectionError as RedisConnectionError

from bot.models import ActionKind
from bot.remediation import jobs
from bot.remediation.fix import QUEUE_QUICK
from bot.remediation.fixes import resync
from bot.remediation.approvals import Approvals, State
from bot.remediation.runtime import Runtime
from handlers.app import web_client
from syncbot import wiring
from test_guard_approvals import second_client, together
from clicks import click, diagnose, events, queued, run_worker

CHANNEL = "C0INCIDNT"
ALICE, BOB, MALLORY = "U0ALICE01", "U0BOB0002", "U0MALLORY"


class Killed(BaseException):
    """The worker process dies here (SIGKILL, OOM): nothing after this line of the job runs."""


def worker(h, **options):
    """Another worker process: its own Redis connection, its own id."""
    # Short follow timeouts: a broken guard that never sees the reload fails the test instead of hanging it.
    options = {"poll_s": 0.01, "sleep": lambda s: None, "follow_timeout_s": 10, "catchup_timeout_s": 10, **options}
    return Runtime(h.bot, Approvals(second_client()), h.wiring.reporter, **options)


def approved_resync(h):
    remediation = h.wiring.remediation
    asked = remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "rows lost overnight")
    assert asked.ok and asked.request.state is State.REQUESTED, asked.text
    approved = remediation.approve(asked.request.id, BOB)
    assert approved.ok and "queued" in approved.text, approved.text
    return asked.request.id


def truncates(h):
    return [s for s in h.sandbox.snowflake.statements if s.startswith("TRUNCATE")]


def reloads(h):
    return h.sandbox.dms_task().reloads


def request(h, request_id):
    return h.wiring.approvals.get(request_id)


def die_after_reload(h, monkeypatch):
    """ReloadTables reaches DMS and DMS accepts it; the worker dies before it can checkpoint that."""
    client = h.sandbox.dms_client
    real, armed = client.reload_tables, [True]

    def reload_tables(**kwargs):
        answer = real(**kwargs)
        if armed[0]:
            armed[0] = False
            raise Killed()
        return answer

    monkeypatch.setattr(client, "reload_tables", reload_tables)


def kill_during_reload(h, monkeypatch):
    request_id = approved_resync(h)
    die_after_reload(h, monkeypatch)
    with pytest.raises(Killed):
        jobs.run_request(worker(h, lease_s=1), request_id)
    dead = request(h, request_id)
    assert (dead.state, dead.step_done, dead.step_started) == (State.RUNNING, 2, 3)  # inside ReloadTables
    assert len(reloads(h)) == 1 and len(truncates(h)) == 2
    return request_id


def test_eight_concurrent_clicks_on_two_replicas_make_one_request_that_runs_once(harness, slack):
    h = harness("load-failed")
    ts, buttons = diagnose(h)
    replica = wiring.wire(h.bot, client=web_client("xoxb-test", slack.api_url), signing_secret=h.secret,
                          process_before_response=True, poll_s=0.01, sleep=lambda s: None).app
    together(8, lambda i: click(h, buttons["pause_pipe"], (ALICE, BOB)[i % 2], message_ts=ts,
                                app=(h.app, replica)[i % 2]))
    answers = sorted(c.params["text"] for c in h.slack.of("response_url"))
    assert len(answers) == 8 and sum("is queued" in a for a in answers) == 1
    assert sum("*Pause pipe* on `orders` is already asked for" in a for a in answers) == 7
    assert len([k for k in h.redis.scan_iter("syncbot:req:*") if not k.endswith(b":people")]) == 1
    assert queued(h) == 1
    run_worker(h)
    assert [s for s in h.sandbox.snowflake.statements if s.startswith("ALTER PIPE")] == [
        "ALTER PIPE STAGING.ORDERS_PIPE SET PIPE_EXECUTION_PAUSED = TRUE"]


def test_a_worker_killed_after_reload_tables_returned_is_resumed_without_a_second_reload(harness, monkeypatch):
    h = harness("stalled")
    request_id = kill_during_reload(h, monkeypatch)
    successor = worker(h)
    assert jobs.run_request(successor, request_id) == "busy"  # the dead worker's lease is still live
    time.sleep(1.1)
    parts = wiring.WorkerParts(successor, h.wiring.queues, lambda r: None, wiring.job_class(successor))
    assert wiring.recover(parts) == [request_id]
    assert jobs.run_request(successor, request_id) == "succeeded"
    assert len(reloads(h)) == 1
    assert len(truncates(h)) == 2  # the checkpointed TRUNCATEs are not run again once the reload started
    done = request(h, request_id)
    assert "DMS ReloadTables: already accepted before the restart" in " ".join(done.progress)


def test_a_reload_that_already_completed_before_the_resume_is_not_called_again(harness, monkeypatch):
    h = harness("stalled")
    monkeypatch.setattr(resync, "RELOAD_GRACE_S", 0.5)  # a broken check gives up quickly and calls DMS again
    request_id = kill_during_reload(h, monkeypatch)
    for _ in range(3):  # DMS finishes the reload while no worker watches
        stat = h.sandbox.gateways.dms.table_statistics(h.sandbox.task_arn)[("public", "orders")]
    assert stat.state == "Table completed"
    time.sleep(1.1)
    assert jobs.run_request(worker(h), request_id) == "succeeded"
    assert len(reloads(h)) == 1 and len(truncates(h)) == 2
    assert "already accepted before the restart (table: Table completed)" in " ".join(request(h, request_id).progress)


def test_a_truncate_outliving_its_lease_leaves_the_table_to_the_worker_that_took_over(harness, monkeypatch):
    h = harness("stalled")
    request_id = approved_resync(h)
    sf, client = h.sandbox.snowflake, h.sandbox.dms_client
    real_truncate, real_reload = sf.truncate, client.reload_tables
    in_statement, release = threading.Event(), threading.Event()
    seen = {}

    def truncate(table, timeout_s=None):
        real_truncate(table, timeout_s=timeout_s)
        if threading.current_thread().name == "slow-worker" and not in_statement.is_set():
            in_statement.set()  # the statement ran; its answer is slow to come back
            release.wait(20)

    def reload_tables(**kwargs):  # the new worker has reloaded: now the slow one's TRUNCATE returns
        answer = real_reload(**kwargs)
        seen["before"] = list(sf.statements)
        release.set()
        slow.join(20)
        seen["after"] = list(sf.statements)
        return answer

    monkeypatch.setattr(sf, "truncate", truncate)
    monkeypatch.setattr(client, "reload_tables", reload_tables)
    results = {}
    # Heartbeat paused: nothing renews the slow worker's 1 s lease while its statement runs.
    slow = threading.Thread(target=lambda: results.update(
        slow=jobs.run_request(worker(h, lease_s=1, heartbeat_every_s=3600), request_id)), name="slow-worker")
    slow.start()
    assert in_statement.wait(20)
    time.sleep(1.1)
    results["new"] = jobs.run_request(worker(h), request_id)
    slow.join(20)
    assert results == {"slow": "taken-over", "new": "succeeded"}
    assert seen["after"] == seen["before"]  # nothing from the slow worker once its statement returned
    assert len(reloads(h)) == 1
    assert truncates(h) == ["TRUNCATE TABLE STAGING.ORDERS_CDC"] * 2 + ["TRUNCATE TABLE PUBLIC.ORDERS"]


def test_every_truncate_is_bounded_on_the_server_below_the_lease(harness):
    # Snowflake keeps running a statement whose client died: only STATEMENT_TIMEOUT_IN_SECONDS below
    # the lease keeps a dead worker's TRUNCATE from landing after another worker took over.
    h = harness("stalled")
    request_id = approved_resync(h)
    rt = worker(h, lease_s=30, statement_timeout_s=20)
    assert jobs.run_request(rt, request_id) == "succeeded"
    assert h.sandbox.snowflake.statement_timeouts == [20, 20] and len(truncates(h)) == 2
    assert max(h.sandbox.snowflake.statement_timeouts) < rt.lease_s


def test_the_heartbeat_keeps_a_slow_step_from_being_taken_over(harness, monkeypatch):
    h = harness("stalled")
    request_id = approved_resync(h)
    sf = h.sandbox.snowflake
    real_truncate = sf.truncate
    in_statement, release = threading.Event(), threading.Event()

    def truncate(table, timeout_s=None):
        if threading.current_thread().name == "slow-worker" and not in_statement.is_set():
            in_statement.set()
            release.wait(20)
        real_truncate(table, timeout_s=timeout_s)

    monkeypatch.setattr(sf, "truncate", truncate)
    results = {}
    slow = threading.Thread(target=lambda: results.update(
        slow=jobs.run_request(worker(h, lease_s=2, heartbeat_every_s=0.2), request_id)), name="slow-worker")
    slow.start()
    assert in_statement.wait(20)
    time.sleep(2.5)  # longer than the lease: only the heartbeat keeps it
    results["other"] = jobs.run_request(worker(h), request_id)
    release.set()
    slow.join(20)
    assert results == {"other": "busy", "slow": "succeeded"}
    assert len(reloads(h)) == 1 and len(truncates(h)) == 2


def test_a_job_delivered_twice_at_once_runs_once(harness):
    h = harness("stalled")
    request_id = approved_resync(h)
    barrier, results = threading.Barrier(2), []

    def deliver():
        rt = worker(h)
        barrier.wait()
        results.append(jobs.run_request(rt, request_id))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == ["busy", "succeeded"]
    assert len(reloads(h)) == 1 and len(truncates(h)) == 2


def test_redis_losing_the_request_mid_run_stops_the_job_loudly(harness, monkeypatch):
    h = harness("stalled")
    request_id = approved_resync(h)
    sf = h.sandbox.snowflake
    real_truncate = sf.truncate

    def truncate(table, timeout_s=None):
        real_truncate(table, timeout_s=timeout_s)
        if table == "PUBLIC.ORDERS":  # Redis restarts without persistence while the second TRUNCATE runs
            h.redis.delete(f"syncbot:req:{request_id}", f"syncbot:req:{request_id}:people")

    monkeypatch.setattr(sf, "truncate", truncate)
    assert jobs.run_request(h.wiring.runtime, request_id) == "state-lost"
    assert reloads(h) == []  # nothing more ran
    note = h.slack.of("chat.postMessage")[-1].params["text"]
    assert note.startswith(":rotating_light: *Re-sync table* of `orders` stopped: the approval store (Redis) lost")
    assert ("What had run: checked: DMS task aurora-snowflake-cdc runs and reloads tables (MigrationType "
            "full-load-and-cdc); TRUNCATE TABLE STAGING.ORDERS_CDC: done; TRUNCATE TABLE PUBLIC.ORDERS: done. "
            "Nothing more will run") in note


def test_an_aws_network_error_in_a_step_fails_the_request_saying_what_already_ran(harness, monkeypatch):
    h = harness("stalled")
    request_id = approved_resync(h)

    def unreachable(**kwargs):
        raise EndpointConnectionError(endpoint_url="https://dms.us-east-1.amazonaws.com/")

    monkeypatch.setattr(h.sandbox.dms_client, "reload_tables", unreachable)
    assert jobs.run_request(worker(h), request_id) == "failed"
    failed = request(h, request_id)
    assert failed.state is State.FAILED and "nothing" not in failed.outcome.lower()
    assert failed.outcome.startswith("Re-sync table failed: EndpointConnectionError: Could not connect to the endpoint")
    assert failed.outcome.endswith("Already done: checked: DMS task aurora-snowflake-cdc runs and reloads tables "
                                   "(MigrationType full-load-and-cdc); TRUNCATE TABLE STAGING.ORDERS_CDC: done; "
                                   "TRUNCATE TABLE PUBLIC.ORDERS: done")
    assert h.wiring.approvals.lock_holder("orders") is None


def test_a_stored_plan_that_does_not_fit_its_fix_fails_before_any_change(harness):
    """The worker rebuilds the typed plan from what was approved; a record edited in Redis (a table the
    approvers never saw) does not run half a plan: the request fails and nothing was truncated."""
    h = harness("stalled")
    request_id = approved_resync(h)
    key = f"syncbot:req:{request_id}"
    data = json.loads(h.redis.hget(key, "plan_data"))
    h.redis.hset(key, "plan_data", json.dumps({**data, "also_truncate": "PUBLIC.PAYMENTS"}))
    assert jobs.run_request(worker(h), request_id) == "failed"
    failed = request(h, request_id)
    assert failed.outcome.startswith("Re-sync table failed before changing anything"), failed.outcome
    assert truncates(h) == [] and reloads(h) == []


def test_a_queue_failure_after_approval_keeps_it_approved_and_recovery_runs_it_once(harness, monkeypatch):
    h = harness("load-failed")
    fixes = h.wiring.queues[QUEUE_QUICK]

    def refuse(*args, **kwargs):
        raise RedisConnectionError("Error 111 connecting to queue-redis:6379. Connection refused.")

    monkeypatch.setattr(fixes, "enqueue", refuse)
    answer = h.wiring.remediation.request("orders", ActionKind.PAUSE_PIPE, ALICE, CHANNEL)
    assert answer.ok and "It stays approved: a worker starts it as soon as it can reach the queue" in answer.text
    assert answer.request.state is State.APPROVED and len(fixes) == 0
    monkeypatch.undo()
    # Two worker replicas run their recovery pass (the grace is waived: the queue entry is known lost).
    monkeypatch.setattr(jobs, "recover", functools.partial(jobs.recover, grace_s=0.0))
    parts = [wiring.build_worker(h.bot, h.wiring.client, poll_s=0.01, sleep=lambda s: None) for _ in range(2)]
    assert [wiring.recover(p) for p in parts] == [[answer.request.id]] * 2
    assert len(fixes) == 1  # queued again once, not once per replica
    h.wiring.worker().work(burst=True)
    assert request(h, answer.request.id).state is State.SUCCEEDED
    assert [s for s in h.sandbox.snowflake.statements if s.startswith("ALTER PIPE")] == [
        "ALTER PIPE STAGING.ORDERS_PIPE SET PIPE_EXECUTION_PAUSED = TRUE"]
    assert wiring.recover(parts[0]) == []


def test_a_quick_fix_is_refused_while_a_worker_holds_the_table_for_a_resync(harness):
    h = harness("stalled")
    request_id = approved_resync(h)
    rt = worker(h)
    assert rt.approvals.claim(request_id, "orders", rt.worker_id, 30, 3600).result.value == "claimed"
    answer = h.wiring.remediation.request("orders", ActionKind.RESTART_TASK, ALICE, CHANNEL)
    assert not answer.ok and f"Another fix (request {request_id}) is running on `orders`" in answer.text
    assert h.sandbox.dms_task().status == "running" and len(h.wiring.queues[QUEUE_QUICK]) == 0
    assert [k for k in h.redis.scan_iter("syncbot:req:*") if not k.endswith(b":people")] == [
        f"syncbot:req:{request_id}".encode()]


def test_cancel_is_refused_once_the_first_truncate_started(harness, monkeypatch):
    h = harness("stalled")
    request_id = approved_resync(h)
    sf = h.sandbox.snowflake
    real_truncate, answers = sf.truncate, []

    def truncate(table, timeout_s=None):
        if not answers:
            answers.append(h.wiring.remediation.cancel(request_id, BOB))
        real_truncate(table, timeout_s=timeout_s)

    monkeypatch.setattr(sf, "truncate", truncate)
    assert jobs.run_request(worker(h), request_id) == "succeeded"
    assert not answers[0].ok and answers[0].text.startswith("Too late to cancel")


def test_cancel_before_the_worker_starts_means_nothing_runs(harness):
    h = harness("stalled")
    request_id = approved_resync(h)
    assert h.wiring.remediation.cancel(request_id, BOB).text == "Cancelled; nothing ran."
    assert jobs.run_request(worker(h), request_id) == "busy"
    assert truncates(h) == [] and reloads(h) == []


def test_only_approvers_or_the_requester_may_reject(harness):
    h = harness("stalled")
    remediation = h.wiring.remediation
    asked = remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "rows lost overnight")
    refused = remediation.reject(asked.request.id, MALLORY)
    assert not refused.ok and refused.text == "Only approvers can reject."
    assert request(h, asked.request.id).state is State.REQUESTED
    assert remediation.reject(asked.request.id, ALICE).text == "Rejected; nothing will run."  # withdrawn
    assert request(h, asked.request.id).outcome == "withdrawn"


def test_a_job_runs_with_the_runtime_of_the_worker_that_takes_it(harness):
    """No process-wide runtime: the web process queues the fix, and whichever worker takes the job runs
    it with its own runtime (its own worker id holds the lease), through the job class it was built with."""
    h = harness("pipe-paused")
    answer = h.wiring.remediation.request("orders", ActionKind.RESUME_PIPE, ALICE, CHANNEL)
    assert answer.ok and queued(h) == 1
    other = wiring.build_worker(h.bot, h.wiring.client, poll_s=0.01, sleep=lambda s: None)
    assert other.runtime.worker_id != h.wiring.runtime.worker_id
    other.worker().work(burst=True)
    assert request(h, answer.request.id).state is State.SUCCEEDED
    assert ("running", other.runtime.worker_id) in events(h)
    assert ("running", h.wiring.runtime.worker_id) not in events(h)
