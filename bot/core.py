"""What the Slack glue, the CLI and the console call: one facade over catalog, diagnosis and offers."""
from __future__ import annotations

from dataclasses import dataclass
import logging
from typing import Any

from redis.exceptions import RedisError

from .catalog import Catalog, TableSpec
from .diagnostics.runner import Diagnoser
from .diagnostics.verdict import resync_refused
from .gateways import Gateways
from .models import ActionKind, Diagnosis, worst_first
from .home import keep_fleet_round
from .offers import Offer, OfferStore
from .pictures import Picture, latency_picture
from .redis_conn import topology
from .remediation.fixes import EVERYWHERE

log = logging.getLogger(__name__)


@dataclass
class SyncBot:
    catalog: Catalog
    diagnoser: Diagnoser
    redis: Any

    def __post_init__(self) -> None:
        self.offers = OfferStore(self.redis)

    @property
    def gateways(self) -> Gateways:
        """The backends every part reads and acts through (one set per process, the diagnoser's)."""
        return self.diagnoser.gateways

    def find(self, text: str) -> TableSpec | None:
        return self.catalog.find(text)

    def suggestions(self, text: str) -> list[str]:
        return self.catalog.suggestions(text)

    def diagnose(self, spec: TableSpec) -> Diagnosis:
        return self.diagnoser.diagnose(spec)

    def diagnose_all(self) -> list[Diagnosis]:
        """A fleet round; kept for the App Home, which shows the last one rather than running its own."""
        diags = worst_first(self.diagnoser.diagnose_many(list(self.catalog.tables)))
        keep_fleet_round(self.redis, diags)
        return diags

    def latency_picture(self, spec: TableSpec) -> Picture | None:
        return latency_picture(self.gateways, spec)

    def offer(self, diag: Diagnosis, channel: str) -> list[Offer]:
        """Stores each applicable fix, and those offered for every table (the re-sync: the runbook's
        re-sync is for data that is corrupted or needs a full reload, which no check sees), and returns the opaque ids
        their buttons will carry. Without Redis there are no buttons (fixes fail closed), but the
        diagnosis is still shown."""
        # Not the re-sync where the task cannot reload a table (a CDC-only task): the verdict says why.
        refused = {ActionKind.RESYNC} if resync_refused(diag.checks) else set()
        actions = [*diag.actions, *(kind for kind in EVERYWHERE if kind not in diag.actions and kind not in refused)]
        try:
            return [self.offers.create(diag.table, action, channel) for action in actions]
        except RedisError:
            log.warning("Redis unreachable: posting %s's diagnosis without fix buttons", diag.table)
            return []

    def warnings(self) -> list[str]:
        """What works today but will hurt later: Redis without persistence loses approvals and re-sync
        checkpoints on a restart."""
        try:
            aof = str(self.redis.info("persistence").get("aof_enabled", "0")) == "1"
        except Exception:  # noqa: BLE001 - readiness reports the outage itself
            return []
        found = [] if aof else ["Redis persistence (appendonly) is off: a Redis restart loses approvals and "
                                "re-sync checkpoints. Run Redis with appendonly yes."]
        seen = self.redis_topology()
        if seen.get("sentinel") and not seen.get("replicas"):
            found.append(f"Redis primary {seen['primary']} has no replica online: no approval or step can be "
                         "confirmed, so every fix is refused until one is back.")
        return found

    def redis_topology(self) -> dict:
        """The primary reached (through Sentinel or REDIS_URL) and its online replicas, for /readyz."""
        try:
            found = topology(self.redis)
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            return {"error": type(exc).__name__}
        return {"primary": found.primary, "replicas": list(found.replicas), "sentinel": found.via_sentinel}

    def readiness(self) -> dict[str, str]:
        try:
            self.redis.ping()
            return {"redis": "ok"}
        except Exception as exc:  # noqa: BLE001 - readiness reports, never raises
            return {"redis": f"down: {type(exc).__name__}"}
