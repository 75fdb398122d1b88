"""Snoozes: "stop annotating alerts about this table until …", set by anyone in the alert channel.

One Redis key per table holding who snoozed, until when, and the verdict it was snoozed at, with the
snooze's own expiry (EXPIREAT), so an ended snooze needs no cleanup. A snooze silences alerts only
while the table is no worse: a newly failing check, or a more severe verdict than the one snoozed,
lifts it (and that alert is annotated in full). Setting, ending and lifting are in the audit stream."""
from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from redis.exceptions import RedisError

from .models import Diagnosis, Section, Status
from .remediation.audit import MAXLEN, STREAM

log = logging.getLogger(__name__)
_KEY = "syncbot:snooze:{}"
_SEEN = "syncbot:snooze-seen:{}"  # the verdict and failing checks last annotated: what a snooze is "at"
SEEN_TTL_S = 24 * 3600
MAX_SNOOZE_S = 7 * 24 * 3600
# How bad a verdict is, for "worse than when it was snoozed" (e.g. Sync Lagging -> DMS Task Stalled).
RANK = {Section.HEALTHY: 0, Section.UNKNOWN: 1, Section.LAGGING: 2, Section.SCHEMA: 2, Section.STALLED: 3}


@dataclass(frozen=True)
class Snooze:
    table: str
    by: str  # a user id
    until: float  # epoch seconds
    section: Section  # the verdict when it was snoozed
    failing: tuple[str, ...]  # the checks failing then

    def worse(self, diag: Diagnosis) -> bool:
        """True when `diag` shows a check failing that was not, or a more severe verdict."""
        failing = {c.name.value for c in diag.checks if c.status is Status.FAILING}
        return bool(failing - set(self.failing)) or RANK[diag.verdict.section] > RANK[self.section]


def _key(table: str) -> str:
    return _KEY.format(table.lower())


class Snoozes:
    def __init__(self, redis: Any):
        self.redis = redis

    def seen(self, diag: Diagnosis) -> None:
        """The table as an alert annotated it: what a snooze set from that annotation is compared with."""
        failing = [c.name.value for c in diag.checks if c.status is Status.FAILING]
        try:
            self.redis.set(_SEEN.format(diag.table.lower()), json.dumps([diag.verdict.section.value, failing]),
                           ex=SEEN_TTL_S)
        except RedisError:
            log.warning("could not record how %s was annotated", diag.table)

    def snooze(self, table: str, by: str, until: float) -> Snooze:
        """Until `until` (at most a week ahead), at the verdict last annotated (Unknown if none was)."""
        until = min(until, time.time() + MAX_SNOOZE_S)
        raw = self.redis.get(_SEEN.format(table.lower()))
        section, failing = (Section(json.loads(raw)[0]), tuple(json.loads(raw)[1])) if raw else (Section.UNKNOWN, ())
        found = Snooze(table, by, until, section, failing)
        with self.redis.pipeline() as pipe:  # MULTI: the snooze and its audit entry together
            pipe.set(_key(table), json.dumps({"by": by, "until": until, "section": section.value,
                                              "failing": failing}), exat=int(until) + 1)
            self._audit(pipe, table, "snoozed", by, f"until {until:.0f}")
            pipe.execute()
        return found

    def get(self, table: str) -> Snooze | None:
        try:
            raw = self.redis.get(_key(table))
        except RedisError:
            return None  # fail open: an alert is annotated rather than lost
        if raw is None:
            return None
        data = json.loads(raw)
        if data["until"] <= time.time():
            return None
        return Snooze(table, data["by"], data["until"], Section(data["section"]), tuple(data["failing"]))

    def active(self, tables: list[str]) -> list[Snooze]:
        """The tables' snoozes now, in one MGET (a Home lists a 500-table catalog's)."""
        if not tables:
            return []
        try:
            raws = self.redis.mget([_key(t) for t in tables])
        except RedisError:
            return []
        found = []
        for table, raw in zip(tables, raws):
            data = json.loads(raw) if raw else None
            if data and data["until"] > time.time():
                found.append(Snooze(table, data["by"], data["until"], Section(data["section"]), tuple(data["failing"])))
        return found

    def end(self, table: str, by: str, why: str = "ended") -> bool:
        """`why`: "ended" by a person, or "lifted" (the table got worse). True if there was one."""
        with self.redis.pipeline() as pipe:
            pipe.delete(_key(table))
            self._audit(pipe, table, f"snooze {why}", by, "")
            gone, _ = pipe.execute()
        return bool(gone)

    @staticmethod
    def _audit(pipe: Any, table: str, event: str, user: str, detail: str) -> None:
        pipe.xadd(STREAM, {"at": str(time.time()), "request": "", "action": "snooze", "table": table,
                           "event": event, "user": user, "detail": detail}, maxlen=MAXLEN, approximate=True)
