"""A table's incident: from the first annotation of an alert about it that is not Healthy until a fresh
diagnosis finds it Healthy (a recovery's, or the one after a fix). That first annotation is the
incident's card, which the glue keeps current; the owners are mentioned on it, once per incident.

One Redis key per table (SET NX, so one replica opens it), kept a day like the alert's thread. What the
card shows (`body`) and its state line (`state`) are opaque strings from the glue."""
from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from typing import Any

from redis.exceptions import RedisError

log = logging.getLogger(__name__)
INCIDENT_TTL_S = 24 * 3600
_KEY = "syncbot:incident:{}"


@dataclass(frozen=True)
class Incident:
    table: str
    channel: str
    thread: str  # the alert's ts: the thread the card is in
    card: str  # the card's own message ts
    started_at: float
    section: str  # the verdict it opened with
    body: str = ""  # what the card shows, as the glue drew it
    state: str = ""  # its latest state line ("fix running: Resume pipe …")


def _key(table: str) -> str:
    return _KEY.format(table.lower())


class Incidents:
    def __init__(self, redis: Any):
        self.redis = redis

    def open(self, incident: Incident) -> bool:
        """True if this opened the table's incident (none was open)."""
        try:
            return bool(self.redis.set(_key(incident.table), json.dumps(asdict(incident)), nx=True,
                                       ex=INCIDENT_TTL_S))
        except RedisError:
            log.warning("could not record %s's incident", incident.table)
            return False

    def get(self, table: str) -> Incident | None:
        try:
            raw = self.redis.get(_key(table))
        except RedisError:
            return None
        return Incident(**json.loads(raw)) if raw else None

    def is_open(self, table: str) -> bool:
        return self.get(table) is not None

    def set_state(self, table: str, state: str) -> Incident | None:
        """The card's new state line; None if no incident is open (nothing to draw)."""
        found = self.get(table)
        if found is None:
            return None
        found = replace(found, state=state)
        try:
            self.redis.set(_key(table), json.dumps(asdict(found)), xx=True, keepttl=True)
        except RedisError:  # the card is drawn anyway; its stored state catches up at the next change
            log.warning("could not record %s's incident state", table)
        return found

    def close(self, table: str) -> Incident | None:
        """Ends the incident (a fresh diagnosis found it Healthy): the next alert opens a new one."""
        found = self.get(table)
        if found is not None:
            try:
                self.redis.delete(_key(table))
            except RedisError:
                log.warning("could not close %s's incident", table)
                return None
        return found


