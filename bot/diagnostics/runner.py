"""Runs every runbook check at once, for one table or the whole catalog, under one deadline.

A round asks each backend only what its tables need, in as few calls as the backend allows: one
DescribeReplicationTasks and one paginated DescribeTableStatistics walk per task, every task's latency
series in one GetMetricData call, the Snowflake and Aurora reads grouped into multi-table statements.
Rounds running at the same time share: a call another round already has in flight is waited for, not
repeated, and multi-table reads waiting for a busy backend are merged into the same statements. Each
backend has its own lane of threads: that bounds the concurrency towards it, and a slow backend cannot
hold the threads the others need. A check whose data is late or failed is "unknown" with the reason;
the rest stand."""
from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime
from typing import Any, Callable

from .. import metrics
from ..catalog import TableSpec
from ..deadline import Unanswered, answer, unexpected
from ..gateways import GatewayError, Gateways
from ..gateways.dms import LATENCY_METRICS, METRIC_QUERIES_PER_CALL, DmsGateway
from ..models import CheckName, CheckResult, Diagnosis, Status, utcnow
from . import checks, layout, slots, tasklog
from .verdict import decide

# Threads per backend lane: how many calls each backend is given at once, from what it tolerates.
# - aws (DMS, CloudWatch): two calls per DMS task and one GetMetricData a round. DMS throttles its API
#   per account (ThrottlingException, shared with the console and deploy tools), so a burst is kept
#   small; botocore's standard retry mode backs off if it is throttled all the same.
# - s3: one ListObjectsV2 per table prefix, the one call that grows with the fleet. S3 serves thousands
#   of listings a second per prefix; the bound is the client's HTTP pool (bot.services AWS_CONFIG,
#   max_pool_connections=32): more threads than pooled connections would open and drop connections.
#   Diagnoser(max_workers=) (SYNCBOT_MAX_WORKERS) overrides it, and should move with that pool.
# - snowflake: a warehouse runs 8 statements at once by default (MAX_CONCURRENCY_LEVEL) and queues the
#   rest; the bot takes half, which is its connection pool (SYNCBOT_SNOWFLAKE_POOL, default 4). A wider
#   lane would only park threads on the pool.
# - aurora: every query is a login of its own on the writer, whose max_connections the application
#   needs; a round makes three queries (columns, row counts, slots), so 4 runs them at once and stays a
#   small share of the writer's connections.
LANE_WIDTH = {"aws": 8, "s3": 32, "snowflake": 4, "aurora": 4}
# Items per call in a multi-table round, the one place batch sizes are set; chunks of one read run
# side by side on their lane. GetMetricData takes at most 500 queries, two per DMS task. A Snowflake
# statement carries enough tables to keep a 500-table round to a few statements per read, few enough
# that it stays cheap for the warehouse and quick to re-split when one missing object refuses it
# (COPY_HISTORY and TASK_HISTORY are table functions per table or task, so fewer of those; SHOW TASKS
# answers a whole database at once). Aurora's reads are one query over arrays of names.
CHUNK = {"latency": METRIC_QUERIES_PER_CALL // len(LATENCY_METRICS),
         "pipe": 100, "history": 50, "newest": 100, "sfcols": 200, "pgcols": 500,
         "tasks": 1000, "taskruns": 50, "rows": 100, "pgrows": 100}


class _InFlight:
    """Answers not yet in, by (kind, key): a round that needs one of them waits for it rather than
    asking the backend again (ten people typing /sync-status orders during an incident cost one
    set of calls). Entries leave as soon as they are answered, so nothing here is ever stale."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[tuple, Future] = {}

    def reserve(self, kind: str, keys: Iterable[Hashable], memo: dict[tuple, Future]) -> list:
        """Puts a future for each key into memo; returns the keys this round must ask for itself."""
        mine = []
        with self._lock:
            for key in keys:
                found = self._answers.get((kind, key))
                if found is None:
                    found = self._answers[(kind, key)] = Future()
                    mine.append(key)
                memo[(kind, key)] = found
        return mine

    def settle(self, kind: str, key: Hashable, future: Future, value: Any) -> None:
        with self._lock:
            if self._answers.get((kind, key)) is future:
                del self._answers[(kind, key)]
        future.settled_at = time.monotonic()  # type: ignore[attr-defined] - for the checks' durations
        if isinstance(value, BaseException):
            future.set_exception(value)
        else:
            future.set_result(value)


class _Batches:
    """The keys of one multi-table read (Snowflake, Aurora) waiting for a call, from every round.
    A call takes all the keys waiting when it starts, up to CHUNK[kind]: when the lane is free, one
    round's keys go at once; when it is busy, keys of the rounds that arrive meanwhile gather and
    share the next statements instead of queueing a statement each."""

    def __init__(self, kind: str, lane: ThreadPoolExecutor, call: Callable[[list], dict], inflight: _InFlight):
        self._kind, self._lane, self._call, self._inflight = kind, lane, call, inflight
        self._size = CHUNK[kind]
        self._lock = threading.Lock()
        self._waiting: list[tuple[Hashable, Future]] = []
        self._queued = 0  # calls submitted to the lane and not started yet

    def add(self, entries: list[tuple[Hashable, Future]]) -> None:
        with self._lock:
            self._waiting += entries
            more = max(0, -(-len(self._waiting) // self._size) - self._queued)
            self._queued += more
        for _ in range(more):
            try:
                self._lane.submit(self._run)
            except RuntimeError:  # the Diagnoser was closed
                self._run(GatewayError("not asked: syncbot is shutting down"))

    def _run(self, refused: GatewayError | None = None) -> None:
        with self._lock:
            self._queued -= 1
            batch, self._waiting = self._waiting[:self._size], self._waiting[self._size:]
        if not batch:
            return
        answers: dict = {}
        error: BaseException | None = refused
        if error is None:
            try:
                answers = self._call([key for key, _ in batch])
            except Exception as exc:  # noqa: BLE001 - every waiting check gets it, and reports it
                error = exc
        for key, future in batch:
            self._inflight.settle(self._kind, key, future, error or answers.get(key, GatewayError("no answer")))


class _Round:
    """The backend calls of one diagnosis round, all started at once; one future per answer."""

    def __init__(self, lanes: dict[str, ThreadPoolExecutor], batches: dict[str, _Batches], inflight: _InFlight,
                 gw: Gateways, specs: list[TableSpec], now: datetime):
        self._lanes, self._batches, self._inflight, self._memo = lanes, batches, inflight, {}
        tasks = [s.dms_task for s in specs]
        self._specs = {_where(s): s for s in specs}
        self._need("aws", "task", tasks, _one(gw.dms.task))
        self._need("aws", "stats", tasks, _one(lambda t: gw.dms.table_statistics(self.answer("task", t).arn)),
                   after=lambda t: [self._memo["task", t]])
        # The task's endpoints and instance: cached reads (bot.gateways.cache), one per task.
        for kind, read in (("target", lambda task: gw.dms.target(task.target_endpoint_arn)),
                           ("source", lambda task: gw.dms.source(task.source_endpoint_arn)),
                           ("instance", lambda task: gw.dms.instance(task.instance_arn))):
            self._need("aws", kind, tasks, _one(lambda t, read=read: read(self.answer("task", t))),
                       after=lambda t: [self._memo["task", t]])
        self._need("aws", "latency", tasks, lambda names: self._latency(gw.dms, names, now),
                   after=lambda t: [self._memo["task", t], _optional(self._memo["instance", t])])
        self._need("s3", "s3", list(self._specs), _one(lambda where: self._listing(gw, where, now)),
                   after=lambda where: [_optional(self._memo["target", where[0]])])
        self._gather("pipe", [s.pipe for s in specs])
        self._gather("history", [s.staging_table for s in specs])
        self._gather("newest", [(s.final_table, s.freshness_column) for s in specs])
        self._gather("sfcols", [t for s in specs for t in (s.final_table, s.staging_table)])
        self._gather("pgcols", [(s.source_schema, s.source_table) for s in specs])
        self._gather("tasks", [s.merge_task for s in specs])
        self._gather("taskruns", [s.merge_task for s in specs])
        self._gather("rows", [s.final_table for s in specs])
        self._gather("pgrows", [(s.source_schema, s.source_table) for s in specs])
        self._need("aurora", "slots", [()], _one(lambda _: gw.aurora.replication_slots()))

    def future(self, kind: str, key: Hashable) -> Future:
        return self._memo[kind, key]

    def answer(self, kind: str, key: Hashable) -> Any:
        """The result of an answer this call depends on (it is in by the time the call runs)."""
        return self._memo[kind, key].result()

    def _gather(self, kind: str, keys: list) -> None:
        """A multi-table read: the keys no round has in flight yet join the next shared statements."""
        mine = self._inflight.reserve(kind, [k for k in dict.fromkeys(keys) if (kind, k) not in self._memo], self._memo)
        self._batches[kind].add([(key, self._memo[kind, key]) for key in mine])

    def _need(self, lane: str, kind: str, keys: list, call: Callable[[list], dict],
              after: Callable[[Any], list[Future]] = lambda key: []) -> None:
        """Asks `call` for the keys no round has in flight yet, CHUNK[kind] keys a call, each chunk
        once the answers it depends on are in. `call` returns {key: value or GatewayError}."""
        fresh = [k for k in dict.fromkeys(keys) if (kind, k) not in self._memo]
        mine = self._inflight.reserve(kind, fresh, self._memo)
        size = CHUNK.get(kind, 1)
        for start in range(0, len(mine), size):
            chunk = mine[start:start + size]
            _when_done([f for k in chunk for f in after(k)],
                       lambda chunk=chunk: self._start(lane, kind, chunk, call, after))

    def _start(self, lane: str, kind: str, chunk: list, call: Callable[[list], dict],
               after: Callable[[Any], list[Future]]) -> None:
        ready = []
        for key in chunk:
            failed = next((f.exception() for f in after(key) if f.exception() is not None), None)
            if failed is not None:  # what it depends on failed: so does it, for the same reason
                self._settle(kind, key, failed)
            else:
                ready.append(key)
        if not ready:
            return
        try:
            pending = self._lanes[lane].submit(call, ready)
        except RuntimeError as exc:  # the Diagnoser was closed
            for key in ready:
                self._settle(kind, key, GatewayError(str(exc)))
            return
        pending.add_done_callback(lambda done: self._finish(kind, ready, done))

    def _finish(self, kind: str, keys: list, done: Future) -> None:
        error = GatewayError("not asked: syncbot is shutting down") if done.cancelled() else done.exception()
        answers = {} if error is not None else done.result()
        for key in keys:
            self._settle(kind, key, error if error is not None else answers.get(key, GatewayError("no answer")))

    def _settle(self, kind: str, key: Hashable, value: Any) -> None:
        self._inflight.settle(kind, key, self._memo[kind, key], value)

    def settled(self, kind: str, key: Hashable) -> Any:
        """An answer that is in, or the error it failed with (for reads a check can do without)."""
        future = self._memo[kind, key]
        return future.exception() or future.result()

    def instance(self, spec: TableSpec) -> tuple[str | None, tuple[str, ...]]:
        return layout.instance_for(spec, self.settled("instance", spec.dms_task))

    def task_logs(self, dms: DmsGateway, specs: list[TableSpec], now: datetime) -> None:
        """Asks for the logs of the tasks, one read per task; the task's answer is in already (its
        DMS check was made from it)."""
        by_task = {spec.dms_task: spec for spec in specs}

        def read(name: str) -> Any:
            task = self.answer("task", name)
            instance, notes = self.instance(by_task[name])
            if instance is None:
                raise GatewayError(notes[0])
            return dms.task_log(instance, task.resource_id, tasklog.window_end(task, now))

        self._need("aws", "tasklog", list(by_task), _one(read))

    def _latency(self, dms: DmsGateway, names: list[str], now: datetime) -> dict:
        """task name -> (series, notes); CloudWatch knows a task by its instance and resource id."""
        targets, out = {}, {}
        for name in names:
            spec = next(s for s in self._specs.values() if s.dms_task == name)
            instance, notes = self.instance(spec)
            if instance is None:
                out[name] = GatewayError(notes[0])
            else:
                targets[name] = ((instance, self.answer("task", name).resource_id), notes)
        series = dms.cdc_latency_many(list(dict.fromkeys(t for t, _ in targets.values())), now) if targets else {}
        out.update({name: (series[target], notes) for name, (target, notes) in targets.items()})
        return out

    def _listing(self, gw: Gateways, where: tuple, now: datetime) -> layout.Listed:
        """The table's layout (its task's target endpoint, else the catalog) and its bounded listing."""
        located = layout.locate(self._specs[where], self.settled("target", where[0]))
        if located.layout is None:
            return layout.Listed(located)
        return layout.Listed(located, gw.s3.newest_cdc_files(located.layout, now))


def _where(spec: TableSpec) -> tuple:
    """What a table's S3 listing depends on: its task, its source table and the catalog's overrides."""
    return (spec.dms_task, spec.source, spec.s3_bucket, spec.s3_prefix)


class _Soft:
    """A read a check can do without: the check gets the error (or the lateness) instead of failing."""

    def __init__(self, future: Future):
        self.future = future


def _answered_in(futures: list, started: float) -> float:
    """Seconds from the round's start until the last of a check's answers was in (an answer still
    missing counts until now). The checks' calls run side by side, so each has its own time."""
    now = time.monotonic()
    times = [getattr(f.future if isinstance(f, _Soft) else f, "settled_at", now) for f in futures]
    return max(0.0, max(times, default=started) - started)


def _one(fn: Callable[[Any], Any]) -> Callable[[list], dict]:
    """A call that answers for a single key, in the shape _need expects."""
    return lambda keys: {keys[0]: fn(keys[0])}


def _optional(future: Future) -> Future:
    """A future that answers None where `future` failed: for a read a check can do without."""
    out: Future = Future()

    def settle(done: Future) -> None:
        out.settled_at = getattr(done, "settled_at", time.monotonic())  # type: ignore[attr-defined]
        out.set_result(None if done.cancelled() or done.exception() else done.result())

    future.add_done_callback(settle)
    return out


def _when_done(futures: list[Future], then: Callable[[], None]) -> None:
    """Runs `then` (on the thread that completes the last future) once every future is done."""
    if not futures:
        then()
        return
    left, lock = [len(futures)], threading.Lock()

    def one_done(_: Future) -> None:
        with lock:
            left[0] -= 1
            last = left[0] == 0
        if last:
            then()

    for future in futures:
        future.add_done_callback(one_done)


# Which answers each check needs, and the pure function that turns them into a CheckResult.
_PLAN: dict[CheckName, tuple[str, Callable[[_Round, TableSpec], list], Callable[..., CheckResult]]] = {
    # DescribeTableStatistics failing makes the table's state unknown, never the task's own status.
    CheckName.DMS: ("DMS", lambda r, s: [r.future("task", s.dms_task), _Soft(r.future("stats", s.dms_task))],
                    lambda s, now, task, stats: checks.check_dms(
                        task, None if isinstance(stats, Exception) else stats.get((s.source_schema, s.source_table)),
                        str(stats) if isinstance(stats, Exception) else "")),
    CheckName.LATENCY: ("CloudWatch", lambda r, s: [r.future("latency", s.dms_task)],
                        lambda s, now, found: checks.check_latency(*found)),
    CheckName.S3: ("S3", lambda r, s: [r.future("s3", _where(s))], lambda s, now, listed: checks.check_s3(listed, s, now)),
    CheckName.SNOWPIPE: ("Snowflake", lambda r, s: [r.future("pipe", s.pipe), r.future("history", s.staging_table),
                                                    _Soft(r.future("target", s.dms_task))],
                         lambda s, now, pipe, hist, target: checks.check_snowpipe(
                             pipe, hist, s, now, None if isinstance(target, Exception) else target)),
    CheckName.MERGE_TASK: ("Snowflake", lambda r, s: [r.future("tasks", s.merge_task), r.future("taskruns", s.merge_task)],
                           lambda s, now, state, runs: checks.check_merge_task(state, runs, s, now)),
    CheckName.FRESHNESS: ("Snowflake", lambda r, s: [r.future("newest", (s.final_table, s.freshness_column))],
                          lambda s, now, newest: checks.check_freshness(newest, s, now)),
    # The lag that explains a gap comes from the freshness and DMS reads: without them the check
    # still runs, allowing only the counts' own precision.
    CheckName.ROWS: ("Aurora/Snowflake",
                     lambda r, s: [r.future("pgrows", (s.source_schema, s.source_table)), r.future("rows", s.final_table),
                                   _optional(r.future("newest", (s.final_table, s.freshness_column))),
                                   _optional(r.future("task", s.dms_task)), _optional(r.future("stats", s.dms_task))],
                     lambda s, now, count, rows, newest, task, stats: checks.check_rows(
                         count, rows, newest, task, (stats or {}).get((s.source_schema, s.source_table)), s, now)),
    CheckName.SCHEMA: ("Aurora/Snowflake",
                       lambda r, s: [r.future("pgcols", (s.source_schema, s.source_table)),
                                     r.future("sfcols", s.final_table), r.future("sfcols", s.staging_table)],
                       lambda s, now, pg, final, staging: checks.check_schema(pg, final, staging, s)),
    # Only the task's own slot is evidence (bot.diagnostics.slots says how it is told apart).
    CheckName.SLOT: ("Aurora", lambda r, s: [r.future("slots", ()), _Soft(r.future("task", s.dms_task)),
                                             _Soft(r.future("source", s.dms_task))],
                     lambda s, now, found, task, source: slots.check_task_slot(slots.claim(
                         found, source, None if isinstance(task, Exception) else task))),
}


class Diagnoser:
    def __init__(self, gateways: Gateways, timeout: float = 8.0, max_workers: int = LANE_WIDTH["s3"],
                 clock: Callable[[], datetime] = utcnow):
        self.gateways = gateways
        self.timeout = timeout
        self._clock = clock
        widths = {**LANE_WIDTH, "s3": max_workers}
        self._lanes = {lane: ThreadPoolExecutor(max_workers=width, thread_name_prefix=f"syncbot-{lane}")
                       for lane, width in widths.items()}
        self._inflight = _InFlight()
        self._batches = {kind: _Batches(kind, self._lanes[backend], getattr(getattr(gateways, backend), method),
                                        self._inflight)
                         for kind, backend, method in (
                             ("pipe", "snowflake", "pipe_statuses"), ("history", "snowflake", "copy_histories"),
                             ("newest", "snowflake", "newest_many"), ("sfcols", "snowflake", "column_types_many"),
                             ("pgcols", "aurora", "columns_many"), ("tasks", "snowflake", "task_states"),
                             ("taskruns", "snowflake", "task_histories"), ("rows", "snowflake", "row_counts"),
                             ("pgrows", "aurora", "row_counts"))}

    def diagnose(self, spec: TableSpec) -> Diagnosis:
        return self.diagnose_many([spec])[0]

    def diagnose_many(self, specs: list[TableSpec]) -> list[Diagnosis]:
        started = time.monotonic()
        deadline = started + self.timeout
        now = self._clock()
        round_ = _Round(self._lanes, self._batches, self._inflight, self.gateways, specs, now)
        results = []
        for spec in specs:
            found = tuple(self._collect(name, backend, need(round_, spec), make, spec, now, deadline, started)
                          for name, (backend, need, make) in _PLAN.items())
            verdict, actions = decide(found)
            elapsed = int((time.monotonic() - started) * 1000)
            results.append(Diagnosis(spec.name, spec.source, found, verdict, actions, now, elapsed, spec.owners))
            metrics.DIAGNOSES.labels(verdict.section.name.lower()).inc()
        return self._with_task_logs(round_, specs, results, now, started, deadline)

    def _with_task_logs(self, round_: _Round, specs: list[TableSpec], results: list[Diagnosis], now: datetime,
                        started: float, deadline: float) -> list[Diagnosis]:
        """The task log, read once the verdicts are in and only for the tables they show with a broken
        task (one read per task however many of its tables), added to their DMS check. A log that
        cannot be read is said in the check's evidence; the check and the verdict stand."""
        broken = [(i, spec) for i, (spec, diag) in enumerate(zip(specs, results)) if tasklog.wanted(diag)]
        if not broken:
            return results
        round_.task_logs(self.gateways.dms, [spec for _, spec in broken], now)
        results = list(results)
        for i, spec in broken:
            log = self._task_log(round_.future("tasklog", spec.dms_task), deadline)
            diag = results[i]
            found = tuple(tasklog.with_task_log(c, log) if c.name is CheckName.DMS else c for c in diag.checks)
            results[i] = replace(diag, checks=found, elapsed_ms=int((time.monotonic() - started) * 1000))
        return results

    def _task_log(self, future: Future, deadline: float) -> Any:
        """The log, or why it could not be read."""
        try:
            return answer(future, deadline, "CloudWatch Logs", self.timeout)
        except Unanswered as exc:
            return str(exc)

    def _collect(self, name: CheckName, backend: str, futures: list, make: Callable[..., CheckResult],
                 spec: TableSpec, now: datetime, deadline: float, started: float) -> CheckResult:
        reason = "inconclusive"
        try:
            result = make(spec, now, *[self._soft(f, deadline) if isinstance(f, _Soft)
                                       else answer(f, deadline, backend, self.timeout) for f in futures])
        except Unanswered as exc:
            result, reason = CheckResult.unknown(name, str(exc)), exc.reason
        except Exception as exc:  # noqa: BLE001 - a check that breaks must not sink the whole answer
            result, reason = CheckResult.unknown(name, unexpected(backend, exc)), "error"
        metrics.CHECK_SECONDS.labels(name.name.lower()).observe(_answered_in(futures, started))
        if result.status is Status.UNKNOWN:
            metrics.CHECK_UNKNOWNS.labels(name.name.lower(), reason).inc()
        return result

    def _soft(self, soft: _Soft, deadline: float) -> Any:
        try:
            return answer(soft.future, deadline, "AWS", self.timeout)
        except Unanswered as exc:
            return exc

    def close(self) -> None:
        for lane in self._lanes.values():
            lane.shutdown(wait=False, cancel_futures=True)
