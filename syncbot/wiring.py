"""Puts the pieces together the same way for `serve`, `worker`, the console and the tests: one
composition root per process kind. The web process gets the Bolt app and queues fixes; the worker
gets only what jobs need (no Bolt app, no signing secret)."""
from __future__ import annotations

import functools
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import prometheus_client
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rq import Queue, SimpleWorker
from rq.job import Job
from slack_bolt import App
from slack_sdk import WebClient

from bot import logs, metrics
from bot.core import SyncBot
from bot import redis_conn
from bot.redis_conn import Replication
from bot.services import build_bot, build_queue_redis
from bot.settings import Settings
from bot.remediation import jobs
from bot.remediation.access import Approvers
from bot.remediation.approvals import ApprovalRequest, Approvals
from bot.remediation.fixes import FIXES, QUEUES
from bot.remediation.runtime import Runtime
from bot.remediation.service import Remediation
from handlers.acks import AcksFirst
from handlers.app import build_app, web_client
from handlers.maintenance import post_due
from handlers.progress import SlackReporter, usergroup_members

log = logging.getLogger(__name__)


@dataclass
class WorkerParts:
    runtime: Runtime
    queues: dict[str, Queue]
    enqueue: Callable[[ApprovalRequest], None]
    job_class: type[Job]  # jobs that run with this runtime

    def worker(self, names: list[str] | None = None, connection: Any = None) -> SimpleWorker:
        """An RQ worker on these queues (all, or `names`) that runs jobs with this runtime. SimpleWorker
        runs them in this process: the gateways' connection pools are not shared across forks."""
        queues = [self.queues[name] for name in (names or QUEUES)]
        return _Worker(queues, connection=connection or self.runtime.bot.redis, job_class=self.job_class,
                       stopping=self.runtime.stopping)


class _Worker(SimpleWorker):
    """RQ's warm shutdown on SIGTERM (finish the job, then exit) would wait hours for a re-sync: here it
    also tells the running job to stop before its next change and hand its request over."""

    def __init__(self, *args: Any, stopping: threading.Event, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._stopping = stopping

    def handle_warm_shutdown_request(self) -> None:
        self._stopping.set()
        super().handle_warm_shutdown_request()

    def subscribe(self) -> None:
        """RQ's own, with its command channel read in waits of 0.25 s instead of 60: redis-py 8's
        PubSubWorkerThread.stop() waits for the read in progress, so RQ's teardown held a stopping worker
        for up to a minute (past a deploy's grace period)."""
        self.log.info("Worker %s: subscribing to channel %s", self.name, self.pubsub_channel_name)
        self.pubsub = self.connection.pubsub()
        self.pubsub.subscribe(**{self.pubsub_channel_name: self.handle_payload})
        self.pubsub_thread = self.pubsub.run_in_thread(sleep_time=0.25, daemon=True,
                                                       exception_handler=self._pubsub_exception_handler)


def job_class(runtime: Runtime) -> type[Job]:
    """RQ imports a job's function by its path and calls it with the job's arguments only; jobs of
    this class hand JOB_PATH the runtime of the worker (or inline queue) running them."""

    class RuntimeJob(Job):
        @property
        def func(self) -> Any:
            found = super().func
            if self.func_name != jobs.JOB_PATH:
                return found
            return functools.partial(_logged_as, self.id, functools.partial(found, runtime))

    return RuntimeJob


def _logged_as(job_id: str, run: Callable[..., Any], *args: Any) -> Any:
    """The job's log records carry its RQ job id."""
    with logs.correlated(rq_job=job_id):
        return run(*args)


@dataclass
class Wiring:
    bot: SyncBot
    app: App
    client: WebClient
    approvals: Approvals
    remediation: Remediation
    reporter: SlackReporter
    parts: WorkerParts  # the queues, and the runtime their jobs run with
    acks: AcksFirst

    @property
    def queues(self) -> dict[str, Queue]:
        return self.parts.queues

    @property
    def runtime(self) -> Runtime:
        return self.parts.runtime

    def worker(self, names: list[str] | None = None, connection: Any = None) -> SimpleWorker:
        return self.parts.worker(names, connection)


def build_worker(bot: SyncBot, client: WebClient, *, inline: bool = False,
                 replication: Replication = Replication(), **runtime_options: Any) -> WorkerParts:
    """`inline`: one queue that runs each job as it is queued, in this process (the console).
    `replication`: how many replicas confirm each transition (bot/redis_conn.py)."""
    runtime = Runtime(bot, Approvals(bot.redis, replication=replication), SlackReporter(client, bot),
                      **runtime_options)
    runs_here = job_class(runtime)
    if inline:
        queue = Queue("syncbot-inline", connection=bot.redis, is_async=False, job_class=runs_here)
        queues = {name: queue for name in QUEUES}
    else:
        queues = {name: Queue(name, connection=bot.redis, job_class=runs_here) for name in QUEUES}

    def enqueue(request: ApprovalRequest) -> None:
        # Each fix names its queue: a re-sync follows DMS for hours on its own, so a worker on the quick
        # fixes' queue is never stuck behind one (run one worker per queue, or more).
        queues[FIXES[request.action].queue].enqueue(jobs.JOB_PATH, request.id, job_timeout=jobs.JOB_TIMEOUT_S)

    runtime.enqueue = enqueue  # a request handed over on shutdown goes back to its queue at once
    if not inline:
        for name, queue in queues.items():
            metrics.watch_queue(name, lambda queue=queue: queue.count)
    return WorkerParts(runtime, queues, enqueue, runs_here)


def wire(bot: SyncBot, *, client: WebClient, signing_secret: str, inline: bool = False,
         process_before_response: bool = False, replication: Replication = Replication(),
         **runtime_options: Any) -> Wiring:
    acks = AcksFirst()
    parts = build_worker(bot, client, inline=inline, replication=replication, **runtime_options)
    runtime = parts.runtime
    approvers = Approvers(bot.catalog.access, bot.redis, usergroup_members(client))
    remediation = Remediation(bot, runtime.approvals, approvers, parts.enqueue)
    app = build_app(bot, remediation, runtime.reporter, signing_secret=signing_secret, client=client,
                    process_before_response=process_before_response, acks=acks)
    return Wiring(bot, app, client, runtime.approvals, remediation, runtime.reporter, parts, acks)


def web(settings: Settings, client: WebClient) -> Wiring:
    """`syncbot serve`: the bot built from settings."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    return wire(build_bot(settings), client=client, signing_secret=secret, replication=redis_conn.replication(settings))


def recover(parts: WorkerParts) -> list[str]:
    """Queues again every request a dead worker or a lost queue entry left behind, each at most once per
    lease across replicas (the claim makes duplicates harmless; this keeps the queue short)."""
    approvals = parts.runtime.approvals
    every_s = max(1, round(parts.runtime.lease_s))

    def enqueue(request: ApprovalRequest) -> None:
        if approvals.redis.set(f"syncbot:requeued:{request.id}", 1, nx=True, ex=every_s):
            log.warning("request %s (%s) lost its worker; queued again", request.id, request.state)
            parts.enqueue(request)

    return jobs.recover(parts.runtime, enqueue)


def worker_from(settings: Settings) -> WorkerParts:
    """`syncbot worker`: the bot built from settings, its Slack client, and the runtime's timings."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    # Snowflake's statement bound on TRUNCATE stays below the lease (see bot.remediation.runtime.Runtime).
    return build_worker(build_bot(settings), web_client(token, settings.slack_api_url),
                        lease_s=settings.job_lease_seconds, poll_s=settings.job_poll_seconds,
                        statement_timeout_s=max(1, int(settings.job_lease_seconds * 2 / 3)),
                        replication=redis_conn.replication(settings),
                        failover_wait=bool(settings.sentinel_addresses))


def run_worker(parts: WorkerParts, names: list[str], settings: Settings, metrics_port: int | None = None,
               metrics_host: str = "0.0.0.0") -> None:
    """Takes over at once what a dead worker left (lease lapsed) or a lost queue entry, starts the worker
    clock, then works the queues `names` until SIGTERM: the running fix stops before its next change
    and is handed over (bot.remediation.jobs), and the process exits."""
    if metrics_port is not None:
        server, _ = prometheus_client.start_http_server(metrics_port, addr=metrics_host)
        log.info("serving GET /metrics on port %s", server.server_port)
    for warning in parts.runtime.bot.warnings():
        log.warning("%s", warning)
    try:
        log.info("worker %s starting on %s; %d stranded request(s) queued again", parts.runtime.worker_id,
                 ", ".join(names), len(recover(parts)))
    except RedisError as exc:  # Redis failing over: the clock's next tick does it
        log.warning("worker %s starting on %s; Redis unavailable (%s)", parts.runtime.worker_id, ", ".join(names),
                    type(exc).__name__)
    threading.Thread(target=clock, args=(parts, min(10.0, settings.job_lease_seconds)), daemon=True,
                     name="clock").start()
    while True:
        try:
            parts.worker(names, connection=build_queue_redis(settings)).work()
            return
        except (RedisConnectionError, RedisTimeoutError) as exc:
            # RQ retries a lost connection only while it waits for a job; anywhere else in its loop
            # (its own registration, a failover then) it raises: start a new RQ worker on the primary.
            log.warning("RQ's worker loop lost Redis (%s); starting it again", type(exc).__name__)
            time.sleep(1)


def clock(parts: WorkerParts, every_s: float = 10.0) -> None:
    """On every replica: every 10 s (or every lease, if shorter), requests whose worker died are queued
    again (a dead worker is noticed within one lease); once a minute, the scheduled maintenance report
    (its period's Redis key makes one replica post per period) and expiring undecided or never-started
    approval requests."""
    ticks = 0
    while True:
        jobs_due = [("recovery", lambda: recover(parts))]
        if ticks % max(1, round(60 / every_s)) == 0:
            jobs_due += [("maintenance report", lambda: post_due(parts.runtime.bot, parts.runtime.reporter.client)),
                         ("approval expiry", lambda: jobs.expire(parts.runtime))]
        for name, tick in jobs_due:
            try:
                tick()
            except Exception:  # noqa: BLE001 - a failed tick is retried at the next one
                log.exception("%s failed; retrying at the next tick", name)
        ticks += 1
        time.sleep(every_s)
