"""Runs the quick fixes (seconds): each does what the runbook says a person would do, and nothing
more. The re-sync, which takes hours, is a resumable job in jobs.py."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

from ..catalog import TableSpec
from ..gateways import Gateways
from ..gateways import GatewayError
from ..models import ActionKind


@dataclass(frozen=True)
class Outcome:
    ok: bool
    summary: str
    lines: tuple[str, ...] = ()


def execute(kind: ActionKind, data: dict, spec: TableSpec, gw: Gateways, *, stop_wait_s: float = 300,
            poll_s: float = 5, sleep: Callable[[float], None] = time.sleep) -> Outcome:
    try:
        if kind is ActionKind.RESTART_TASK:
            return _restart(data, spec, gw, stop_wait_s, poll_s, sleep)
        if kind in (ActionKind.PAUSE_PIPE, ActionKind.RESUME_PIPE):
            if data.get("force"):
                gw.snowflake.force_resume_pipe(spec.pipe)
            else:
                gw.snowflake.set_pipe_paused(spec.pipe, data["paused"])
            state = gw.snowflake.pipe_status(spec.pipe).execution_state
            return Outcome(True, f"pipe {spec.pipe} is now {state}")
        if kind is ActionKind.FIX_COLUMNS:
            return _fix_columns(data, spec, gw)
        if kind is ActionKind.RESUME_TASK:
            gw.snowflake.resume_task(spec.merge_task)
            return Outcome(True, f"resumed merge task {spec.merge_task}")
        if kind is ActionKind.RETRY_FILES:
            gw.snowflake.load_files(data["definition"], data["files"])
            return Outcome(True, f"reloaded {len(data['files'])} files with the pipe's COPY statement")
    except GatewayError as exc:
        return Outcome(False, str(exc))
    raise ValueError(f"{kind} is not a quick fix")


def _restart(data: dict, spec: TableSpec, gw: Gateways, wait_s: float, poll_s: float,
             sleep: Callable[[float], None]) -> Outcome:
    arn = data["task_arn"]
    lines = []
    if data["stop_first"]:
        gw.dms.stop_task(arn)
        deadline = time.monotonic() + wait_s
        while (status := gw.dms.task(spec.dms_task).status) not in ("stopped", "failed"):
            if time.monotonic() > deadline:
                return Outcome(False, f"the task did not stop within {wait_s:.0f}s (it is {status})")
            sleep(poll_s)
        lines.append(f"stopped the task ({status})")
    status = gw.dms.start_task(arn, "resume-processing")
    lines.append(f"StartReplicationTask resume-processing accepted; the task is {status}")
    return Outcome(True, f"restarted DMS task {spec.dms_task}", tuple(lines))


def _fix_columns(data: dict, spec: TableSpec, gw: Gateways) -> Outcome:
    # change_columns checks every statement before it runs the first.
    lines = gw.snowflake.change_columns([tuple(change) for change in data["changes"]])
    summary = f"ran {len(lines)} column changes"
    added = data.get("added", [])
    if not added:
        return Outcome(True, summary, tuple(lines))
    try:
        definition = gw.snowflake.definition("TASK", spec.merge_task).upper()
    except GatewayError as exc:
        lines.append(f"warning: could not read the merge task {spec.merge_task}: {exc}")
        return Outcome(True, summary, tuple(lines))
    absent = [c for c in added if c not in definition]
    if absent:
        lines.append(f"warning: the merge task {spec.merge_task} does not mention {', '.join(absent)}: "
                     "update its logic (runbook Schema Mismatch step 4)")
    else:
        lines.append(f"the merge task {spec.merge_task} already mentions the new columns")
    return Outcome(True, summary, tuple(lines))
