"""The DMS check's evidence from the task's own log (runbook: "Check DMS task logs"). Pure.

A stalled task repeats the same line thousands of times: each distinct line is shown once, with how
often and when it was first and last seen, newest first. Secrets and connection strings are masked
before a line is kept, so nothing after this point ever holds them."""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from ..gateways.dms import LogLine, TaskInfo, TaskLog
from ..models import CheckName, CheckResult, Diagnosis, Section, Status

MAX_SHOWN = 3  # distinct lines shown; the rest are counted
SHOWN_CHARS = 240  # of each line shown
ENABLE_HINT = "turn it on with Logging.EnableLogging = true in the task settings"
AFTER_STOP = timedelta(minutes=5)  # a stopping task still logs why for a moment

_MASKS = (
    # key=value and key: value, as in libpq/ODBC connection strings and settings dumps
    (re.compile(r"(?i)\b(password|passwd|pwd|secret|token|secretaccesskey|secret_access_key)(\s*[=:]\s*)"
                r"(?:'[^']*'|\"[^\"]*\"|\{[^}]*\}|[^\s;'\"]+)"), r"\1\2[masked]"),
    (re.compile(r"(?i)\b(password\s+)'[^']*'"), r"\1'[masked]'"),  # SQL: ... PASSWORD 'secret'
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@]+@"), r"\1[masked]@"),  # a URL's user:password@
    (re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"), "[masked]"),  # AWS access key ids
)
# What comes before the message: an optional thread id, then the line's own timestamp.
_STAMP = re.compile(r"^\s*(?:[0-9A-Fa-f]{4,16}: )?\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:[:.]\d+)?\s+")


@dataclass(frozen=True)
class Distinct:
    text: str  # masked, without the line's own timestamp
    severity: str
    count: int
    first: datetime
    last: datetime


def mask(text: str) -> str:
    for pattern, replacement in _MASKS:
        text = pattern.sub(replacement, text)
    return text


def distinct_lines(lines: Iterable[LogLine]) -> list[Distinct]:
    """One entry per distinct line (its text after the timestamp, masked), newest last-seen first."""
    seen: dict[str, Distinct] = {}
    for line in lines:
        text = mask(_STAMP.sub("", line.text, count=1))
        found = seen.get(text)
        if found is None:
            seen[text] = Distinct(text, line.severity, 1, line.at, line.at)
        else:
            seen[text] = replace(found, count=found.count + 1, first=min(found.first, line.at),
                                 last=max(found.last, line.at))
    return sorted(seen.values(), key=lambda d: d.last, reverse=True)


def wanted(diag: Diagnosis) -> bool:
    """Whether the diagnosis shows the task broken (failed, stopped, an errored table, or stalled):
    only then is its log worth a read. A healthy task costs no Logs call."""
    dms = diag.check(CheckName.DMS)
    if dms is None or dms.status is Status.UNKNOWN:  # the task was not read: its log cannot be named
        return False
    return dms.status is Status.FAILING or diag.verdict.section is Section.STALLED


def window_end(task: TaskInfo, now: datetime) -> datetime:
    """Where the log read ends: now, or for a task that stopped, just after it stopped (its last
    lines say why; the hours since are silent)."""
    stopped = task.stopped_at
    return min(now, stopped + AFTER_STOP) if stopped else now


def with_task_log(check: CheckResult, log: TaskLog | str) -> CheckResult:
    """The DMS check with the log's evidence added; `log` is the reason when it could not be read.
    A running task whose log has errors becomes a warning; nothing else about the check changes."""
    if isinstance(log, str):
        return replace(check, details=check.details + (f"Task log: not read ({log})",))
    if log.missing:
        name = log.group if log.missing == "log group" else log.stream
        return replace(check, details=check.details + (
            f"Task log: task logging is off (no {log.missing} {name}); {ENABLE_HINT}",))
    where = f"{log.group} / {log.stream}"
    span = f"the {log.hours}h before {log.end:%H:%M} UTC"
    if not log.lines:
        return replace(check, details=check.details + (f"Task log {where}: no errors or warnings in {span}",))
    found = distinct_lines(log.lines)
    errors = sum(1 for line in log.lines if line.severity == "E")
    shown = sorted(sorted(found, key=lambda d: (d.severity != "E", -d.last.timestamp()))[:MAX_SHOWN],
                   key=lambda d: d.last, reverse=True)  # errors first when not all fit, then newest first
    details = [f"Task log {where}, {span}: {errors} errors, {len(log.lines) - errors} warnings, "
               f"{len(found)} distinct (newest first):"]
    details += [_shown(d) for d in shown]
    if len(found) > len(shown):
        left = len(found) - len(shown)
        details.append(f"… and {left} more distinct line{'s' if left > 1 else ''} in the log")
    if log.more:
        details.append(f"(more lines than one read takes: these are the newest, from {log.lines[0].at:%H:%M} UTC; "
                       "older ones are in the log)")
    status, summary = check.status, check.summary
    if status is Status.OK and errors:
        status, summary = Status.WARNING, f"{summary}; its log has {errors} errors in {span}"
    return replace(check, status=status, summary=summary, details=check.details + tuple(details))


def _shown(d: Distinct) -> str:
    when = f"{d.last:%H:%M}" if d.count == 1 else f"{d.first:%H:%M}–{d.last:%H:%M}"
    text = d.text if len(d.text) <= SHOWN_CHARS else d.text[:SHOWN_CHARS - 1] + "…"
    return f"{d.count}× {when} {text}"
