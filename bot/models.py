"""Plain data passed between gateways, checks, the verdict and the renderers."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    OK = "ok"
    WARNING = "warning"
    FAILING = "failing"
    UNKNOWN = "unknown"


# Worst first: used to sort the fleet view and to pick an overall state.
SEVERITY = {Status.FAILING: 0, Status.UNKNOWN: 1, Status.WARNING: 2, Status.OK: 3}


class Section(StrEnum):
    """The runbook section a verdict follows, by its heading."""

    LAGGING = "Sync Lagging / Data Missing"
    SCHEMA = "Schema Mismatch"
    STALLED = "DMS Task Stalled"
    HEALTHY = "Healthy"
    UNKNOWN = "Unknown"


class Where(StrEnum):
    UPSTREAM = "upstream (Aurora/DMS)"
    DOWNSTREAM = "downstream (Snowpipe/merge)"
    NONE = "none"
    UNKNOWN = "unknown"


class CheckName(StrEnum):
    DMS = "DMS task"
    LATENCY = "CDC latency"
    S3 = "CDC files in S3"
    SNOWPIPE = "Snowpipe"
    FRESHNESS = "Freshness"
    SCHEMA = "Schema drift"
    SLOT = "Replication slot"
    MERGE_TASK = "Merge task"
    ROWS = "Row counts"


class ActionKind(StrEnum):
    """The fixes the verdict can offer; each is defined in bot/remediation/fixes/<kind>.py."""

    RESTART_TASK = "restart_task"
    PAUSE_PIPE = "pause_pipe"
    RESUME_PIPE = "resume_pipe"
    # The value predates type fixes: catalogs' [access.policies] and stored offers name it so.
    FIX_COLUMNS = "add_columns"
    RETRY_FILES = "retry_files"
    RESYNC = "resync"
    RESUME_TASK = "resume_task"
    RELOAD_TARGET = "reload_target"


@dataclass(frozen=True)
class CheckResult:
    name: CheckName
    status: Status
    summary: str
    details: tuple[str, ...] = ()
    # Machine-readable facts the verdict reads (e.g. {"task_status": "running"}).
    facts: dict[str, Any] = field(default_factory=dict)
    trend: str = ""

    @classmethod
    def unknown(cls, name: CheckName, reason: str) -> CheckResult:
        return cls(name, Status.UNKNOWN, f"unknown: {reason}")


@dataclass(frozen=True)
class Verdict:
    section: Section
    where: Where
    summary: str
    reasons: tuple[str, ...] = ()

    @property
    def healthy(self) -> bool:
        return self.section is Section.HEALTHY


@dataclass(frozen=True)
class Diagnosis:
    table: str
    source: str
    checks: tuple[CheckResult, ...]
    verdict: Verdict
    actions: tuple[ActionKind, ...]
    generated_at: datetime
    elapsed_ms: int = 0
    owners: tuple[str, ...] = ()  # the catalog's owners of the table (Slack user or usergroup ids)

    def check(self, name: CheckName) -> CheckResult | None:
        return next((c for c in self.checks if c.name is name), None)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        data["verdict"]["healthy"] = self.verdict.healthy
        return data


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def overall(diag: Diagnosis) -> Status:
    """One status for a whole diagnosis, from its verdict."""
    if diag.verdict.section is Section.HEALTHY:
        return Status.OK
    if diag.verdict.section is Section.UNKNOWN:
        return Status.UNKNOWN
    return Status.FAILING


def worst_first(diags: list[Diagnosis]) -> list[Diagnosis]:
    return sorted(diags, key=lambda d: (SEVERITY[overall(d)], d.table))
