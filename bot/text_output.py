"""Plain-text and JSON renderings of a diagnosis, for the CLI and cron (Slack has its own renderer)."""
from __future__ import annotations

import json

from .models import Diagnosis, Status, overall, worst_first
from .remediation.fixes import FIXES

MARK = {Status.OK: "OK  ", Status.WARNING: "WARN", Status.FAILING: "FAIL", Status.UNKNOWN: "????"}


def text(diag: Diagnosis) -> str:
    v = diag.verdict
    lines = [f"{diag.table} ({diag.source}): {v.section}" + ("" if v.healthy else f" — where: {v.where}"),
             f"  {v.summary}"]
    lines += [f"  · {r}" for r in v.reasons]
    lines.append("")
    for check in diag.checks:
        lines.append(f"[{MARK[check.status]}] {check.name}: {check.summary}")
        if check.trend:
            lines.append(f"         trend: {check.trend}")
        lines += [f"         {d}" for d in check.details]
    if diag.actions:
        lines.append("")
        lines.append("Fixes: " + ", ".join(FIXES[a].label for a in diag.actions))
    lines.append(f"(checked in {diag.elapsed_ms} ms at {diag.generated_at:%Y-%m-%d %H:%M:%S} UTC)")
    return "\n".join(lines)


def fleet_text(diags: list[Diagnosis]) -> str:
    return "\n".join(f"[{MARK[overall(d)]}] {d.table:<24} {d.verdict.section}"
                     + ("" if d.verdict.healthy else f" — {d.verdict.where}") for d in worst_first(diags))


def to_json(diags: list[Diagnosis]) -> str:
    return json.dumps([d.to_json() for d in diags], indent=2, default=str)
