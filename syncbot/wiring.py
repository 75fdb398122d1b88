"""Puts the pieces together the same way for `serve`, `worker`, the console and the tests: one
composition root per process kind. The web process gets the Bolt app and queues fixes; the worker
gets only what jobs need (no Bolt app, no signing secret)."""
from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Callable

from rq import Queue, SimpleWorker
from rq.job import Job
from slack_bolt import App
from slack_sdk import WebClient

from bot.core import SyncBot
from bot.services import build_bot
from bot.settings import Settings
from bot.models import ActionKind
from bot.remediation import jobs
from bot.remediation.access import Approvers
from bot.remediation.approvals import ApprovalRequest, Approvals
from bot.remediation.fixes import FIXES, QUEUES
from bot.remediation.runtime import Runtime
from bot.remediation.service import Remediation
from handlers.acks import AcksFirst
from handlers.app import build_app
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
        return SimpleWorker(queues, connection=connection or self.runtime.bot.redis, job_class=self.job_class)


def job_class(runtime: Runtime) -> type[Job]:
    """RQ imports a job's function by its path and calls it with the job's arguments only; jobs of
    this class hand JOB_PATH the runtime of the worker (or inline queue) running them."""

    class RuntimeJob(Job):
        @property
        def func(self) -> Any:
            found = super().func
            return functools.partial(found, runtime) if self.func_name == jobs.JOB_PATH else found

    return RuntimeJob


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


def build_worker(bot: SyncBot, client: WebClient, *, inline: bool = False, **runtime_options: Any) -> WorkerParts:
    """`inline`: one queue that runs each job as it is queued, in this process (the console)."""
    runtime = Runtime(bot, Approvals(bot.redis), SlackReporter(client, bot), **runtime_options)
    runs_here = job_class(runtime)
    if inline:
        queue = Queue("syncbot-inline", connection=bot.redis, is_async=False, job_class=runs_here)
        queues = {name: queue for name in QUEUES}
    else:
        queues = {name: Queue(name, connection=bot.redis, job_class=runs_here) for name in QUEUES}

    def enqueue(request: ApprovalRequest) -> None:
        # Each fix names its queue: a re-sync follows DMS for hours on its own, so a worker on the quick
        # fixes' queue is never stuck behind one (run one worker per queue, or more).
        queues[FIXES[ActionKind(request.action)].queue].enqueue(jobs.JOB_PATH, request.id,
                                                                job_timeout=jobs.JOB_TIMEOUT_S)

    return WorkerParts(runtime, queues, enqueue, runs_here)


def wire(bot: SyncBot, *, client: WebClient, signing_secret: str, inline: bool = False,
         process_before_response: bool = False, acks: AcksFirst | None = None, **runtime_options: Any) -> Wiring:
    """`acks`: the one the bot's diagnoser holds its answers for (served() builds both)."""
    acks = acks or AcksFirst()
    parts = build_worker(bot, client, inline=inline, **runtime_options)
    runtime = parts.runtime
    approvers = Approvers(bot.catalog.access, bot.redis, usergroup_members(client))
    remediation = Remediation(bot, runtime.approvals, approvers, parts.enqueue, runtime.reporter)
    app = build_app(bot, remediation, runtime.reporter, signing_secret=signing_secret, client=client,
                    process_before_response=process_before_response, acks=acks)
    return Wiring(bot, app, client, runtime.approvals, remediation, runtime.reporter, parts, acks)


def served(make_bot: Callable[[Callable[[], None]], SyncBot], *, client: WebClient, signing_secret: str) -> Wiring:
    """A server's wiring: `make_bot(hold)` builds the bot with `hold` as its diagnoser's before_answer,
    so answers that come in during a burst wait for the burst's acknowledgements (AcksFirst)."""
    acks = AcksFirst()
    return wire(make_bot(acks.after_burst), client=client, signing_secret=signing_secret, acks=acks)


def web(settings: Settings, client: WebClient) -> Wiring:
    """`syncbot serve`: the bot built from settings."""
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    return served(lambda hold: build_bot(settings, before_answer=hold), client=client, signing_secret=secret)


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


def expire(parts: WorkerParts) -> int:
    """Undecided requests past their deadline, and approved ones never started, lose their buttons."""
    expired = parts.runtime.approvals.expire_overdue()
    for request_id in expired:
        request = parts.runtime.approvals.get(request_id)
        parts.runtime.reporter.request_changed(request)
        parts.runtime.reporter.finished(request)
    return len(expired)
