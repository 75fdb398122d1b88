"""Every fix kind, one module each: what it is called, who must agree, where it queues, its typed
plan and the steps it runs. To add one: a new module here with its `FIX`, listed below, and its
ActionKind member (bot/models.py)."""
from __future__ import annotations

from ...models import ActionKind
from ..fix import Fix
from . import fix_columns, pause_pipe, restart_task, resume_merge_task, resume_pipe, retry_files, resync

FIXES: dict[ActionKind, Fix] = {fix.kind: fix for fix in (
    restart_task.FIX, pause_pipe.FIX, resume_pipe.FIX, fix_columns.FIX, resume_merge_task.FIX, retry_files.FIX,
    resync.FIX)}

if missing := set(ActionKind) - set(FIXES):  # a kind the verdict may offer and nothing could run
    raise ImportError(f"no fix module for {sorted(missing)}")

QUEUES: tuple[str, ...] = tuple(dict.fromkeys(fix.queue for fix in FIXES.values()))
# Offered for every table whatever the verdict: the diagnosis's overflow menu.
EVERYWHERE: tuple[ActionKind, ...] = tuple(kind for kind, fix in FIXES.items() if fix.everywhere)
