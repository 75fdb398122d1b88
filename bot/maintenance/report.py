"""The maintenance report's data, and its plain-text and JSON renderings (Slack has its own)."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum

from ..models import SEVERITY, Status
from ..text_output import MARK


class Topic(StrEnum):
    VACUUM = "Vacuum"
    WAL = "WAL retention"
    INSTANCE = "Replication instance"
    S3 = "S3 clean-up"


@dataclass(frozen=True)
class Finding:
    topic: Topic
    subject: str  # the Aurora table, slot, replication instance or s3:// prefix it is about
    status: Status
    summary: str
    fix: str = ""  # what to do, in words; empty when nothing needs doing
    code: str = ""  # SQL, JSON or a command to copy as it is
    details: tuple[str, ...] = ()
    table: str | None = None  # the catalog table; None for findings about the whole sync
    trend: str = ""


@dataclass(frozen=True)
class MaintenanceReport:
    findings: tuple[Finding, ...]
    generated_at: datetime
    elapsed_ms: int = 0

    @property
    def overall(self) -> Status:
        return min((f.status for f in self.findings), key=SEVERITY.__getitem__, default=Status.OK)

    @property
    def per_table(self) -> list[Finding]:
        return [f for f in self.findings if f.table is not None]

    @property
    def whole_sync(self) -> list[Finding]:
        return [f for f in self.findings if f.table is None]

    def needing_attention(self) -> list[Finding]:
        """Everything not OK, worst first (the report's own order within a status)."""
        return sorted((f for f in self.findings if f.status is not Status.OK), key=lambda f: SEVERITY[f.status])

    def headline(self) -> str:
        attention = len(self.needing_attention())
        if not attention:
            return f"Maintenance: all {len(self.findings)} checks OK"
        return f"Maintenance: {attention} of {len(self.findings)} checks need attention"

    def to_json(self) -> dict:
        data = asdict(self)
        data["generated_at"] = self.generated_at.isoformat()
        data["overall"] = self.overall.value
        return data


def text(report: MaintenanceReport) -> str:
    lines = [report.headline(), ""]
    for title, findings in (("Per table", report.per_table), ("Whole sync", report.whole_sync)):
        if findings:
            lines.append(title)
            lines += [line for finding in findings for line in _finding_lines(finding)]
            lines.append("")
    lines.append(f"(checked in {report.elapsed_ms} ms at {report.generated_at:%Y-%m-%d %H:%M:%S} UTC)")
    return "\n".join(lines)


def _finding_lines(finding: Finding) -> list[str]:
    where = f"{finding.table} ({finding.subject})" if finding.table else finding.subject
    lines = [f"[{MARK[finding.status]}] {finding.topic} · {where}: {finding.summary}"]
    if finding.trend:
        lines.append(f"         trend: {finding.trend}")
    if finding.status is not Status.OK:  # an OK finding's evidence is its summary line
        lines += [f"         {d}" for d in finding.details]
    if finding.fix:
        lines.append(f"         fix: {finding.fix}")
    lines += [f"           {c}" for c in finding.code.splitlines()]
    return lines


def to_json(report: MaintenanceReport) -> str:
    return json.dumps(report.to_json(), indent=2, default=str)
