"""Alert threads: which alert gets which reply. The state lives in Redis, never in a process, so
Slack's retries and every replica get the same answer:

- one annotation per Slack message: SET NX on the message's channel and ts. Slack retries an event
  it thinks undelivered (X-Slack-Retry-Num) and any replica may receive each try;
- one full diagnosis per table per suppression window: SET NX GET on the table atomically either makes
  this alert the first of its burst or returns the first one's thread, which the others link to;
- the first alert's thread is remembered for a day, so a recovery can be noted there;
- a snoozed table's alerts get no annotation while it is no worse than when it was snoozed (a worse
  one lifts the snooze and is annotated in full); the first annotation of a broken table opens its
  incident (bot.incidents), whose card the glue keeps current and on which the owners are mentioned.

These marks fail closed: if Redis cannot be reached nothing is marked and nothing is posted, and a mark
is final even if posting then fails (the error is logged). A missed annotation is better than duplicates.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from . import metrics
from .alerts import INSTANCE_ALIAS, Alert, Post, read
from .catalog import TableSpec
from .core import SyncBot
from .gateways import GatewayError
from .gateways.dms import DmsGateway
from .incidents import Incident, Incidents
from .models import Diagnosis, worst_first
from .snoozes import Snooze, Snoozes

log = logging.getLogger(__name__)

EVENT_TTL_S = 24 * 3600  # far longer than Slack keeps retrying (three times within minutes)
THREAD_TTL_S = 24 * 3600  # how long a recovery still finds the first alert's thread
ALIASES_TTL_S = 3600
_EVENT = "syncbot:alert:event:{}:{}"
_BURST = "syncbot:alert:burst:{}"
_THREAD = "syncbot:alert:thread:{}"


@dataclass(frozen=True)
class Thread:
    """A message (an alert) and so the thread under it."""

    channel: str
    ts: str

    def encode(self) -> str:
        return json.dumps([self.channel, self.ts])

    @classmethod
    def decode(cls, raw: bytes | str) -> Thread:
        channel, ts = json.loads(raw)
        return cls(channel, ts)


@dataclass(frozen=True)
class Annotation:
    """The reply to one alert: full diagnoses of the tables whose burst starts now, worst first, and for
    tables already diagnosed in this window, the first alert whose thread holds that diagnosis."""

    thread: Thread
    diagnoses: tuple[Diagnosis, ...]
    earlier: tuple[tuple[str, Thread], ...]
    silenced: tuple[Snooze, ...] = ()  # snoozed tables, no worse than when snoozed: nothing is said of them
    lifted: tuple[Snooze, ...] = ()  # snoozes this alert ended: the table got worse
    opens: tuple[str, ...] = ()  # tables whose incident this annotation opens (its card; owners mentioned)

    def lifted_for(self, table: str) -> Snooze | None:
        return next((s for s in self.lifted if s.table == table), None)


@dataclass(frozen=True)
class RecoveryNote:
    """A recovery, noted in the thread of the tables' first alert with their current verdicts."""

    thread: Thread
    diagnoses: tuple[Diagnosis, ...]
    resolved: tuple[Incident, ...] = ()  # incidents a Healthy diagnosis here ended: their cards say so


class ThreadStore:
    def __init__(self, redis: Any, suppression_minutes: int):
        self._redis = redis
        self.window_s = suppression_minutes * 60

    def first_delivery(self, message: Thread) -> bool:
        """True for exactly one caller per message, whatever the retries and replicas."""
        return bool(self._redis.set(_EVENT.format(message.channel, message.ts), "1", nx=True, ex=EVENT_TTL_S))

    def first_alert(self, table: str, here: Thread) -> Thread | None:
        """None when `here` starts the table's burst (and is remembered as its first alert); otherwise
        the alert that started it, still within the suppression window."""
        if self.window_s > 0:
            # Redis >= 7: NX with GET sets only when absent and returns what was there, in one step.
            earlier = self._redis.set(_BURST.format(table), here.encode(), nx=True, ex=self.window_s, get=True)
            if earlier is not None:
                return Thread.decode(earlier)
        self._redis.set(_THREAD.format(table), here.encode(), ex=THREAD_TTL_S)
        return None

    def thread_of(self, table: str) -> Thread | None:
        raw = self._redis.get(_THREAD.format(table))
        return Thread.decode(raw) if raw is not None else None


class TaskAliases:
    """CloudWatch names a DMS task by its resource id (the last segment of its ARN), not by the
    identifier the catalog uses; this maps resource ids back, asking DMS at most once an hour. A DMS
    that does not answer costs only the aliases: the identifiers still match."""

    def __init__(self, dms: DmsGateway, tasks: list[str], clock: Callable[[], float] = time.monotonic):
        self._dms, self._tasks, self._clock = dms, tasks, clock
        self._lock = threading.Lock()
        self._aliases: dict[str, str] = {}
        self._expires = 0.0

    def get(self) -> Mapping[str, str]:
        with self._lock:
            if self._clock() >= self._expires:
                self._aliases = self._lookup()
                self._expires = self._clock() + ALIASES_TTL_S
            return dict(self._aliases)

    def _lookup(self) -> dict[str, str]:
        aliases = {}
        for task in self._tasks:
            try:
                found = self._dms.task(task)
                aliases[found.resource_id] = task
                # The instance it runs on, so an instance's event names its tables (bot.alerts).
                aliases[f"{INSTANCE_ALIAS}{self._dms.instance(found.instance_arn)}/{task}"] = task
            except GatewayError as exc:  # what was read stays: the resource id without the instance
                log.warning("cannot resolve DMS task %s to its resource id or instance: %s", task, exc)
        return aliases


class AlertThreads:
    """What the Slack glue calls for a post in an alert channel: read it, mark its first delivery, then annotate its
    alerts and note its recoveries (one post may carry both: a grouped Grafana message)."""

    def __init__(self, bot: SyncBot):
        self.bot = bot
        self.channels = frozenset(bot.catalog.alerts.channels)
        self.store = ThreadStore(bot.redis, bot.catalog.alerts.suppression_minutes)
        self.aliases = TaskAliases(bot.gateways.dms, list(bot.catalog.tasks()))
        self.snoozes = Snoozes(bot.redis)
        self.incidents = Incidents(bot.redis)

    def read(self, post: Post) -> tuple[Alert, ...]:
        """The post's alerts and recoveries, per table; nothing outside the catalog's alert channels."""
        if post.channel not in self.channels:
            return ()
        found = read(post, self.bot.catalog, self.aliases.get)
        if not found:
            metrics.ALERTS.labels("ignored").inc()  # not an alert, or no catalog table in it
        return found

    def first_delivery(self, post: Post) -> bool:
        """True for the one replica that annotates this post; retries and the other replicas get False."""
        first = self.store.first_delivery(Thread(post.channel, post.ts))
        if not first:
            metrics.ALERTS.labels("ignored").inc()  # a retry, or another replica's
        return first

    def annotate(self, alert: Alert) -> Annotation:
        here = Thread(alert.channel, alert.ts)
        fresh: list[TableSpec] = []
        earlier: list[tuple[str, Thread]] = []
        for spec in alert.tables:
            first = self.store.first_alert(spec.name, here)
            if first is None:
                fresh.append(spec)
            else:
                earlier.append((spec.name, first))
        silenced = [s for s in self.snoozes.active([t for t, _ in earlier])]  # a repeat is never worse
        quiet = {s.table for s in silenced}
        shown, lifted = [], []
        for diag in self._diagnose(fresh):
            snooze = self.snoozes.get(diag.table)
            if snooze is not None and not snooze.worse(diag):
                silenced.append(snooze)
                continue
            if snooze is not None and self.snoozes.end(diag.table, "syncbot", "lifted"):
                lifted.append(snooze)
            self.snoozes.seen(diag)
            shown.append(diag)
        metrics.ALERTS.labels("annotated").inc(len(fresh))
        metrics.ALERTS.labels("suppressed").inc(len(earlier))
        opens = tuple(d.table for d in shown if not d.verdict.healthy and not self.incidents.is_open(d.table))
        return Annotation(here, tuple(shown), tuple((t, f) for t, f in earlier if t not in quiet), tuple(silenced),
                          tuple(lifted), opens)

    def recover(self, alert: Alert) -> list[RecoveryNote]:
        """Recoveries of tables never alerted here (or over a day ago) have no thread and are left alone."""
        threads = {spec.name: self.store.thread_of(spec.name) for spec in alert.tables}
        noted = [spec for spec in alert.tables if threads[spec.name] is not None]
        by_thread: dict[Thread, list[Diagnosis]] = {}
        resolved: dict[Thread, list[Incident]] = {}
        for diag in self._diagnose(noted):
            by_thread.setdefault(threads[diag.table], []).append(diag)
            if diag.verdict.healthy and (ended := self.incidents.close(diag.table)) is not None:
                resolved.setdefault(threads[diag.table], []).append(ended)
        return [RecoveryNote(thread, tuple(diags), tuple(resolved.get(thread, ()))) for thread, diags in by_thread.items()]

    def _diagnose(self, specs: list[TableSpec]) -> tuple[Diagnosis, ...]:
        # One round for all the alert's tables: a task's tables share their DMS and Aurora calls.
        return tuple(worst_first(self.bot.diagnoser.diagnose_many(specs))) if specs else ()
