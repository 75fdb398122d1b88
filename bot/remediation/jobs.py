"""The re-sync (runbook "Re-syncing a Table"), run by the background worker. Each step is
checkpointed in the request's Redis record before and after it runs, so a worker that dies resumes
where it stopped (after its lease runs out) and never repeats a step that completed."""
from __future__ import annotations

import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

from ..catalog import TableSpec
from ..core import SyncBot
from ..gateways import Gateways
from ..gateways import GatewayError
from ..models import ActionKind, Diagnosis
from .approvals import ApprovalRequest, Approvals

log = logging.getLogger(__name__)
STEPS = ("truncate staging", "truncate final", "reload", "follow", "verify")
RELOADING = ("table is being reloaded", "before load", "full load")


class Reporter(Protocol):
    def request_changed(self, request: ApprovalRequest) -> None: ...

    def diagnosis(self, request: ApprovalRequest, diag: Diagnosis) -> None: ...


class ResyncFailed(Exception):
    pass


class LeaseLost(Exception):
    """Another worker took the request over: this one stops without touching anything."""


@dataclass
class Runtime:
    bot: SyncBot
    approvals: Approvals
    reporter: Reporter
    worker_id: str = field(default_factory=lambda: f"worker-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    poll_s: float = 30.0
    follow_timeout_s: float = 12 * 3600
    catchup_timeout_s: float = 1800
    lease_s: int = 300  # a worker renews this at every poll; a dead one is taken over after it
    lock_ttl_s: int = 6 * 3600
    sleep: Callable[[float], None] = time.sleep


_runtime: Runtime | None = None


def configure(runtime: Runtime) -> None:
    """Called once by the process that runs jobs (the worker, or the console for in-process jobs)."""
    global _runtime
    _runtime = runtime


def resync_job(request_id: str) -> str:
    """The RQ entry point: `bot.remediation.jobs.resync_job`."""
    if _runtime is None:
        raise RuntimeError("jobs.configure() was not called in this process")
    return run_resync(_runtime, request_id)


def run_resync(rt: Runtime, request_id: str) -> str:
    req = rt.approvals.get(request_id)
    if req is None:
        return "missing"
    claim = rt.approvals.claim(request_id, req.table, rt.worker_id, rt.lease_s, rt.lock_ttl_s)
    rt.reporter.request_changed(rt.approvals.get(request_id))
    if claim[0] != "claimed":
        return claim[0]
    spec = rt.bot.find(req.table)
    gw = rt.bot.diagnoser.gateways
    try:
        for index, step in enumerate(STEPS):
            req = rt.approvals.get(request_id)
            if req.step_done >= index:
                continue
            resumed = req.step_started >= index
            _checkpoint(rt, req, f"{step}: started", step_started=index)
            line = _STEP_FUNCS[index](rt, req, spec, gw, resumed)
            _checkpoint(rt, req, f"{step}: done", step_done=index, live="",
                        progress=json.dumps([*rt.approvals.get(request_id).progress, line]))
            rt.reporter.request_changed(rt.approvals.get(request_id))
    except LeaseLost:
        log.warning("request %s was taken over by another worker; stopping", request_id)
        return "taken-over"
    except (GatewayError, ResyncFailed) as exc:
        rt.approvals.finish(request_id, req.table, rt.worker_id, False, str(exc))
        rt.reporter.request_changed(rt.approvals.get(request_id))
        return "failed"
    rt.approvals.finish(request_id, req.table, rt.worker_id, True, f"{req.table} re-synced")
    done = rt.approvals.get(request_id)
    rt.reporter.request_changed(done)
    rt.reporter.diagnosis(done, rt.bot.diagnose(spec))
    return "succeeded"


def resume_interrupted(rt: Runtime, enqueue: Callable[[str], None]) -> list[str]:
    """At worker start: re-syncs left approved or running are queued again. The claim makes this
    safe: a request still owned by a live worker (its lease renewed) is not taken twice."""
    ids = rt.approvals.unfinished(ActionKind.RESYNC.value)
    for request_id in ids:
        enqueue(request_id)
    return ids


def _checkpoint(rt: Runtime, req: ApprovalRequest, detail: str, **fields) -> None:
    if not rt.approvals.checkpoint(req.id, req.table, rt.worker_id, rt.lease_s, rt.lock_ttl_s, detail, **fields):
        raise LeaseLost(req.id)


def _truncate(which: str):
    def step(rt: Runtime, req: ApprovalRequest, spec: TableSpec, gw: Gateways, resumed: bool) -> str:
        table = spec.staging_table if which == "staging" else spec.final_table
        gw.snowflake.truncate(table)  # truncating an already empty table again is harmless
        return f"TRUNCATE TABLE {table}: done"
    return step


def _reload(rt: Runtime, req: ApprovalRequest, spec: TableSpec, gw: Gateways, resumed: bool) -> str:
    arn = req.plan_data["task_arn"]
    if resumed:
        # The call may have gone through before the worker died: DMS says so in the table's state.
        stat = gw.dms.table_statistics(arn).get((spec.source_schema, spec.source_table))
        if stat and stat.state.lower() in RELOADING:
            return f"DMS ReloadTables: already accepted before the restart (table: {stat.state})"
    gw.dms.reload_table(arn, spec.source_schema, spec.source_table)
    return f"DMS ReloadTables data-reload for {spec.source}: accepted"


def _follow(rt: Runtime, req: ApprovalRequest, spec: TableSpec, gw: Gateways, resumed: bool) -> str:
    arn = req.plan_data["task_arn"]
    deadline = time.monotonic() + rt.follow_timeout_s
    while True:
        stat = gw.dms.table_statistics(arn).get((spec.source_schema, spec.source_table))
        state = stat.state if stat else "not in the task statistics"
        rows = stat.full_load_rows if stat else 0
        _checkpoint(rt, req, "", live=f"DMS: {state}, {rows:,} rows loaded")
        rt.reporter.request_changed(rt.approvals.get(req.id))
        if state.lower() == "table completed":
            break
        if state.lower() in ("table error", "table cancelled", "table does not exist"):
            raise ResyncFailed(f"DMS reports '{state}' for {spec.source}")
        if time.monotonic() > deadline:
            raise ResyncFailed(f"DMS still loading after {rt.follow_timeout_s / 3600:.1f} h ({state})")
        rt.sleep(rt.poll_s)
    deadline = time.monotonic() + rt.catchup_timeout_s
    while (pending := gw.snowflake.pipe_status(spec.pipe).pending_file_count) > 0:
        _checkpoint(rt, req, "", live=f"Snowpipe: {pending} files pending")
        rt.reporter.request_changed(rt.approvals.get(req.id))
        if time.monotonic() > deadline:
            return f"DMS loaded {rows:,} rows; Snowpipe still had {pending} files pending"
        rt.sleep(rt.poll_s)
    return f"DMS loaded {rows:,} rows; Snowpipe caught up"


def _verify(rt: Runtime, req: ApprovalRequest, spec: TableSpec, gw: Gateways, resumed: bool) -> str:
    final = gw.snowflake.row_count(spec.final_table)
    estimate = gw.aurora.row_estimate(spec.source_schema, spec.source_table)
    aurora = f"≈{estimate:,}" if estimate is not None else "unknown"
    return f"rows now: Aurora {aurora}, Snowflake {spec.final_table} {final:,}"


_STEP_FUNCS = (_truncate("staging"), _truncate("final"), _reload, _follow, _verify)
