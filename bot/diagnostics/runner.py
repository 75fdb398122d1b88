"""Runs every runbook check at once. Each backend call is a future; calls that depend on another
(table statistics need the task's ARN) are chained without blocking a worker. One deadline bounds
the whole answer: a check whose data is late or failed is "unknown" with the reason, the rest stand."""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from ..catalog import TableSpec
from ..gateways import GatewayError
from ..gateways.aurora import AuroraGateway
from ..gateways.dms import DmsGateway
from ..gateways.s3 import S3Gateway
from ..gateways.snowflake import SnowflakeGateway
from ..models import CheckName, CheckResult, Diagnosis
from . import checks
from .verdict import decide

log = logging.getLogger(__name__)


@dataclass
class Gateways:
    dms: DmsGateway
    s3: S3Gateway
    snowflake: SnowflakeGateway
    aurora: AuroraGateway


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class _Calls:
    """The backend calls of one diagnosis round, each made at most once and shared between tables."""

    def __init__(self, pool: ThreadPoolExecutor, gw: Gateways, now: datetime):
        self._pool, self._gw, self._now = pool, gw, now
        self._memo: dict[tuple, Future] = {}

    def _once(self, key: tuple, fn: Callable[[], Any]) -> Future:
        if key not in self._memo:
            self._memo[key] = self._pool.submit(fn)
        return self._memo[key]

    def _then(self, key: tuple, first: Future, fn: Callable[[Any], Any]) -> Future:
        """A call that needs another's result, submitted only once that result is in."""
        if key in self._memo:
            return self._memo[key]
        chained: Future = Future()
        self._memo[key] = chained

        def step(done: Future) -> None:
            if done.exception() is not None:
                chained.set_exception(done.exception())
                return
            inner = self._pool.submit(fn, done.result())
            inner.add_done_callback(lambda f: _copy(f, chained))

        first.add_done_callback(step)
        return chained

    def task(self, spec: TableSpec) -> Future:
        return self._once(("task", spec.dms_task), lambda: self._gw.dms.task(spec.dms_task))

    def table_stats(self, spec: TableSpec) -> Future:
        return self._then(("stats", spec.dms_task), self.task(spec), lambda t: self._gw.dms.table_statistics(t.arn))

    def latency(self, spec: TableSpec) -> Future:
        return self._then(("latency", spec.dms_instance, spec.dms_task), self.task(spec),
                          lambda t: self._gw.dms.cdc_latency(spec.dms_instance, t.resource_id, self._now))

    def cdc_files(self, spec: TableSpec) -> Future:
        return self._once(("s3", spec.s3_bucket, spec.s3_table_prefix),
                          lambda: self._gw.s3.recent_cdc_files(spec.s3_bucket, spec.s3_table_prefix, self._now))

    def pipe(self, spec: TableSpec) -> Future:
        return self._once(("pipe", spec.pipe), lambda: self._gw.snowflake.pipe_status(spec.pipe))

    def history(self, spec: TableSpec) -> Future:
        return self._once(("history", spec.staging_table), lambda: self._gw.snowflake.copy_history(spec.staging_table))

    def newest(self, spec: TableSpec) -> Future:
        return self._once(("newest", spec.final_table, spec.freshness_column),
                          lambda: self._gw.snowflake.newest(spec.final_table, spec.freshness_column))

    def sf_columns(self, table: str) -> Future:
        return self._once(("sfcols", table), lambda: self._gw.snowflake.columns(table))

    def pg_columns(self, spec: TableSpec) -> Future:
        return self._once(("pgcols", spec.source), lambda: self._gw.aurora.columns(spec.source_schema, spec.source_table))

    def slots(self) -> Future:
        return self._once(("slots",), self._gw.aurora.replication_slots)


def _copy(src: Future, dst: Future) -> None:
    if src.exception() is not None:
        dst.set_exception(src.exception())
    else:
        dst.set_result(src.result())


# Which calls each check needs, and the pure function that turns their results into a CheckResult.
_PLAN: dict[CheckName, tuple[str, Callable[[_Calls, TableSpec], list[Future]], Callable[..., CheckResult]]] = {
    CheckName.DMS: ("DMS", lambda c, s: [c.task(s), c.table_stats(s)],
                    lambda s, now, task, stats: checks.check_dms(task, stats.get((s.source_schema, s.source_table)))),
    CheckName.LATENCY: ("CloudWatch", lambda c, s: [c.latency(s)], lambda s, now, series: checks.check_latency(series)),
    CheckName.S3: ("S3", lambda c, s: [c.cdc_files(s)], lambda s, now, files: checks.check_s3(files, s, now)),
    CheckName.SNOWPIPE: ("Snowflake", lambda c, s: [c.pipe(s), c.history(s)],
                         lambda s, now, pipe, hist: checks.check_snowpipe(pipe, hist, s)),
    CheckName.FRESHNESS: ("Snowflake", lambda c, s: [c.newest(s)],
                          lambda s, now, newest: checks.check_freshness(newest, s, now)),
    CheckName.SCHEMA: ("Aurora/Snowflake",
                       lambda c, s: [c.pg_columns(s), c.sf_columns(s.final_table), c.sf_columns(s.staging_table)],
                       lambda s, now, pg, final, staging: checks.check_schema(pg, final, staging, s)),
    CheckName.SLOT: ("Aurora", lambda c, s: [c.slots()], lambda s, now, slots: checks.check_slot(slots)),
}


class Diagnoser:
    def __init__(self, gateways: Gateways, timeout: float = 8.0, max_workers: int = 32,
                 clock: Callable[[], datetime] = utcnow):
        self.gateways = gateways
        self.timeout = timeout
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="syncbot-check")

    def diagnose(self, spec: TableSpec) -> Diagnosis:
        return self.diagnose_many([spec])[0]

    def diagnose_many(self, specs: list[TableSpec]) -> list[Diagnosis]:
        started = time.monotonic()
        deadline = started + self.timeout
        now = self._clock()
        calls = _Calls(self._pool, self.gateways, now)
        pending = [(spec, {name: (backend, need(calls, spec), make)
                           for name, (backend, need, make) in _PLAN.items()}) for spec in specs]
        results = []
        for spec, plan in pending:
            found = tuple(self._collect(name, backend, futures, make, spec, now, deadline)
                          for name, (backend, futures, make) in plan.items())
            verdict, actions = decide(found)
            elapsed = int((time.monotonic() - started) * 1000)
            results.append(Diagnosis(spec.name, spec.source, found, verdict, actions, now, elapsed))
        return results

    def _collect(self, name: CheckName, backend: str, futures: list[Future], make: Callable[..., CheckResult],
                 spec: TableSpec, now: datetime, deadline: float) -> CheckResult:
        try:
            values = [f.result(timeout=max(0.0, deadline - time.monotonic())) for f in futures]
            return make(spec, now, *values)
        except FutureTimeout:
            return CheckResult.unknown(name, f"{backend} did not answer within {self.timeout:g}s")
        except GatewayError as exc:
            return CheckResult.unknown(name, f"{backend}: {exc}")
        except Exception as exc:  # noqa: BLE001 - one broken backend must not sink the whole answer
            ref = uuid.uuid4().hex[:8]
            log.exception("check %s failed unexpectedly (ref %s)", name, ref)
            return CheckResult.unknown(name, f"{backend} failed unexpectedly ({type(exc).__name__}, ref {ref})")

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
