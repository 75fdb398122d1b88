"""Runs an approved fix in the background worker, step by step, exactly as it was approved.

Durability: each step is checkpointed in the request's Redis record. Before a step that changes
anything, the worker passes the fence (its fencing token still holds the request, atomically with
renewing the lease); after it, the checkpoint. A heartbeat renews the lease while a step runs, so a
slow step keeps its claim and a dead worker is noticed within one short lease. A worker that
restarts, or the worker clock of any replica, re-queues requests whose lease lapsed; the claim lets
exactly one worker take each over, and a step that completed is never run again. Steps that may
have half-happened before a crash (a ReloadTables whose answer was lost) ask the system on resume.

The job runs the plan the approvers saw: the fix's typed plan rebuilt from the stored `plan_data`;
the catalog is read only to diagnose the table again after a re-sync."""
from __future__ import annotations

import json
import logging
from typing import Callable

from redis.exceptions import RedisError

from .. import logs, metrics
from .approvals import ApprovalRequest, Result
from .fixes import FIXES
from .runtime import Lease, LeaseLost, Runtime, StateLost, Stopping
from .steps import StepContext, StepFailed

log = logging.getLogger(__name__)

JOB_PATH = "bot.remediation.jobs.run_job"
JOB_TIMEOUT_S = 13 * 3600  # longer than a re-sync may follow DMS (12 h)


def run_job(rt: Runtime, request_id: str) -> str:
    """The queue's entry point (JOB_PATH). A job carries only the request id; the worker's job class
    (syncbot.wiring.job_class) hands it the runtime of the process that runs it."""
    return run_request(rt, request_id)


def run_request(rt: Runtime, request_id: str) -> str:
    request = rt.approvals.get(request_id)
    if request is None:
        return "missing"
    with logs.correlated(request_id=request_id, table=request.table,
                         dms_task=str(request.plan_data.get("task_arn") or "") or None):
        return _run_request(rt, request)


def _run_request(rt: Runtime, request: ApprovalRequest) -> str:
    request_id = request.id
    try:
        claim = rt.approvals.claim(request_id, request.table, rt.worker_id, rt.lease_s, rt.lock_ttl_s)
    except RedisError as exc:
        # Unreachable, or no replica confirmed the grant (a failover could hand it to another worker):
        # run nothing. If the claim stands, its lease lapses and the recovery queues it again.
        log.error("request %s: claim not confirmed (%s); nothing ran", request_id, type(exc).__name__)
        return "interrupted"
    if claim.result is not Result.CLAIMED:
        if claim.result in (Result.EXPIRED, Result.LOCKED):
            _tell_finished(rt, request_id)
        return claim.result.value
    request = rt.approvals.get(request_id)
    rt.reporter.request_changed(request)
    with Lease(rt, request, claim.token) as lease:
        return _run_steps(rt, lease)


def _run_steps(rt: Runtime, lease: Lease) -> str:
    request = lease.request
    fix = FIXES[request.action]
    done: list[str] = list(request.progress)
    try:
        # Inside the try: a stored plan that does not fit its fix (tampered) fails before any change.
        for index, step in enumerate(fix.approved_steps(request.plan_data)):
            now = rt.approvals.get(request.id)
            if now is None:
                raise StateLost(request.id)
            done = list(now.progress)
            if now.step_done >= index:
                continue
            if rt.stopping.is_set():
                raise Stopping()  # between two steps: the next one is another worker's
            resumed = now.step_started >= index
            at = lease.fence(f"{step.name}: started", changes=step.changes, step_started=index)
            log.info("step %s: started%s", step.name, " (resumed)" if resumed else "", extra={"step": step.name})
            line = step.run(StepContext(rt.bot.gateways, lease, resumed, at, rt))
            done.append(line)
            lease.fence(f"{step.name}: done", step_done=index, live="", progress=json.dumps(done))
            log.info("step %s: done: %s", step.name, line, extra={"step": step.name})
            rt.reporter.request_changed(rt.approvals.get(request.id))
    except Stopping:
        return _hand_over(rt, lease)
    except LeaseLost as exc:
        log.warning("request %s: stopping, the lease is gone (%s)", request.id, exc)
        return "taken-over"
    except StateLost:
        log.error("request %s: its Redis record vanished mid-run", request.id)
        rt.reporter.state_lost(request, tuple(done))
        return "state-lost"
    except RedisError as exc:
        # Nothing can be recorded now. The lease lapses and a worker resumes from the last checkpoint.
        log.error("request %s: Redis failed mid-run (%s); it resumes when a worker can reach Redis",
                  request.id, type(exc).__name__)
        return "interrupted"
    except Exception as exc:  # noqa: BLE001 - every other failure ends the request, with its reason
        reason = str(exc) if isinstance(exc, StepFailed) else f"{type(exc).__name__}: {exc}"
        return _end(rt, lease, False, _failure(fix.label, reason, done))
    return _end(rt, lease, True, "; ".join(done) or f"{fix.label} done")


def _hand_over(rt: Runtime, lease: Lease) -> str:
    """Shutting down: the lease is given back and the request queued again, so a worker that keeps
    running takes it over now rather than once the lease lapsed; it resumes at the step not done."""
    request = lease.request
    reply = rt.approvals.release(request.id, request.table, rt.worker_id, lease.token, "worker shutting down")
    if reply.result is not Result.OK:
        return "taken-over"
    log.info("request %s: handed over as the worker shuts down", request.id)
    metrics.FIXES.labels(request.action.value, "handed_over").inc()
    if rt.enqueue is not None:
        try:
            rt.enqueue(request)
        except Exception as exc:  # noqa: BLE001 - its lease has lapsed: any worker's recovery queues it
            log.warning("request %s: could not queue it again (%s); recovery will", request.id, type(exc).__name__)
    return "handed-over"


def _failure(label: str, reason: str, done: list[str]) -> str:
    if not done:
        return f"{label} failed before changing anything: {reason}"
    return f"{label} failed: {reason}. Already done: " + "; ".join(done)


def _end(rt: Runtime, lease: Lease, ok: bool, outcome: str) -> str:
    request = lease.request
    try:
        reply = rt.approvals.finish(request.id, request.table, rt.worker_id, lease.token, ok, outcome)
    except RedisError:
        log.error("request %s: could not record its end (%s)", request.id, outcome)
        return "interrupted"
    if reply.result is Result.MISSING:
        rt.reporter.state_lost(request, (outcome,))
        return "state-lost"
    if reply.result is not Result.OK:
        return "taken-over"
    done = rt.approvals.get(request.id)
    metrics.FIXES.labels(request.action.value, done.state.value).inc()
    rt.reporter.request_changed(done)
    rt.reporter.finished(done)
    after = FIXES[request.action].diagnose_after
    if ok and (after or rt.reporter.follows(request.table)) and (spec := rt.bot.find(request.table)) is not None:
        diag = rt.bot.diagnose(spec)  # fresh: only it may say the table is resolved
        if after:
            rt.reporter.diagnosis(done, diag)
        rt.reporter.verified(done, diag)
    return done.state.value


def _tell_finished(rt: Runtime, request_id: str) -> None:
    request = rt.approvals.get(request_id)
    if request is not None:
        rt.reporter.request_changed(request)
        rt.reporter.finished(request)


def recover(rt: Runtime, enqueue: Callable[[ApprovalRequest], None], grace_s: float = 30.0) -> list[str]:
    """Run by a worker when it starts and by the worker clock: requests whose worker died (lease
    lapsed) or whose queue entry was lost (approved, never claimed) are queued again. The claim lets
    exactly one worker take each."""
    ids = rt.approvals.stranded(grace_s)
    for request_id in ids:
        request = rt.approvals.get(request_id)
        if request is not None:
            metrics.RECOVERIES.inc()
            enqueue(request)
    return ids


def expire(rt: Runtime) -> list[str]:
    """Run by the worker clock: undecided requests past their deadline, and approved ones no worker
    started within their window, expire; their messages lose their buttons and say so."""
    expired = rt.approvals.expire_overdue()
    for request_id in expired:
        _tell_finished(rt, request_id)
    return expired
