"""Puts the pieces together the same way for `serve`, `worker`, the console and the tests."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rq import Queue
from slack_bolt import App
from slack_sdk import WebClient

from bot.core import SyncBot
from bot.remediation import jobs
from bot.remediation.access import Approvers
from bot.remediation.approvals import Approvals
from bot.remediation.service import Remediation
from handlers.app import build_app
from handlers.reporting import SlackReporter, usergroup_members

QUEUE = "syncbot"
RESYNC_JOB = "bot.remediation.jobs.resync_job"
JOB_TIMEOUT_S = 13 * 3600  # longer than a re-sync may follow DMS (12 h)


@dataclass
class Wiring:
    bot: SyncBot
    app: App
    client: WebClient
    approvals: Approvals
    remediation: Remediation
    reporter: SlackReporter
    queue: Queue
    runtime: jobs.Runtime


def wire(bot: SyncBot, *, client: WebClient, signing_secret: str, queue: Queue | None = None,
         process_before_response: bool = False, **runtime_options: Any) -> Wiring:
    """`queue` defaults to RQ on the bot's Redis; pass Queue(is_async=False) to run jobs in-process."""
    queue = queue if queue is not None else Queue(QUEUE, connection=bot.redis)
    approvals = Approvals(bot.redis)
    reporter = SlackReporter(client, bot)
    approvers = Approvers(bot.catalog.access, bot.redis, usergroup_members(client))

    def enqueue(request_id: str) -> None:
        queue.enqueue(RESYNC_JOB, request_id, job_timeout=JOB_TIMEOUT_S)

    runtime = jobs.Runtime(bot, approvals, reporter, **runtime_options)
    jobs.configure(runtime)
    remediation = Remediation(bot, approvals, approvers, enqueue, reporter)
    app = build_app(bot, remediation, reporter, signing_secret=signing_secret, client=client,
                    process_before_response=process_before_response)
    return Wiring(bot, app, client, approvals, remediation, reporter, queue, runtime)
