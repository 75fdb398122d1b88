"""What a fix will do, worked out from the systems as they are now: every SQL statement and AWS call,
shown to approvers word for word, and the facts they need to judge it. The approval binds to the
plan's hash, so a changed plan (another task, other columns, other files) needs a new approval."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ..catalog import TableSpec
from ..diagnostics.checks import PIPE_STATES, check_schema, pipe_stale
from ..gateways import Gateways
from ..gateways.snowflake import copy_with_files, relative_to_source
from ..models import ActionKind, utcnow


class PlanError(Exception):
    """The fix does not apply now (nothing to add, task not running...); the message says why."""


@dataclass(frozen=True)
class Plan:
    kind: ActionKind
    table: str
    steps: tuple[str, ...]
    facts: tuple[str, ...] = ()
    data: dict[str, Any] = field(default_factory=dict)  # what the executor needs, JSON-serialisable

    @property
    def hash(self) -> str:
        body = json.dumps([self.kind.value, self.table, self.steps, self.data], sort_keys=True, default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


def build_plan(kind: ActionKind, spec: TableSpec, gw: Gateways, catalog_tables: list[TableSpec]) -> Plan:
    return _BUILDERS[kind](spec, gw, catalog_tables)


def _restart(spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan:
    task = gw.dms.task(spec.dms_task)
    steps = []
    if task.status == "running":
        steps += [f"AWS DMS StopReplicationTask(ReplicationTaskArn={task.arn})  — running but stalled",
                  "wait until the task reports stopped"]
    elif task.status not in ("stopped", "failed", "ready"):
        raise PlanError(f"The DMS task is {task.status}; it can be restarted once it is stopped or failed.")
    steps.append(f"AWS DMS StartReplicationTask(ReplicationTaskArn={task.arn}, "
                 "StartReplicationTaskType=resume-processing)")
    sharing = sorted(t.name for t in tables if t.dms_task == spec.dms_task)
    facts = (f"task {task.identifier} is {task.status}" + (f" ({task.stop_reason})" if task.stop_reason else ""),
             f"the task replicates {len(sharing)} catalog tables: {', '.join(sharing)}")
    return Plan(ActionKind.RESTART_TASK, spec.name, tuple(steps), facts,
                {"task": task.identifier, "task_arn": task.arn, "stop_first": task.status == "running"})


def _pipe(paused: bool):
    def build(spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan:
        status = gw.snowflake.pipe_status(spec.pipe)
        want = "PAUSED" if paused else "RUNNING"
        if status.execution_state == want:
            raise PlanError(f"The pipe {spec.pipe} is already {want}.")
        kind = ActionKind.PAUSE_PIPE if paused else ActionKind.RESUME_PIPE
        facts = (f"pipe {spec.pipe} is {status.execution_state}, {status.pending_file_count} files pending",)
        if not paused and pipe_stale(status, utcnow()):
            # ALTER PIPE … RESUME refuses a stale pipe; Snowflake's documented way is a force resume.
            step = f"SELECT SYSTEM$PIPE_FORCE_RESUME('{spec.pipe}', 'STALENESS_CHECK_OVERRIDE')"
            facts += ("no file loaded for longer than the 14 days Snowflake keeps notifications: the pipe is "
                      "stale, so it is force-resumed; files older than that may not load (re-sync the table)",)
            return Plan(kind, spec.name, (step,), facts, {"pipe": spec.pipe, "paused": False, "force": True})
        if not paused and status.execution_state != "PAUSED":
            raise PlanError(f"The pipe {spec.pipe} is {status.execution_state}, which resuming does not fix: "
                            f"{PIPE_STATES.get(status.execution_state, 'see the diagnosis')}.")
        step = f"ALTER PIPE {spec.pipe} SET PIPE_EXECUTION_PAUSED = {'TRUE' if paused else 'FALSE'}"
        return Plan(kind, spec.name, (step,), facts, {"pipe": spec.pipe, "paused": paused})
    return build


def _fix_columns(spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan:
    aurora = gw.aurora.columns(spec.source_schema, spec.source_table)
    final, staging = gw.snowflake.column_types(spec.final_table), gw.snowflake.column_types(spec.staging_table)
    drift = check_schema(aurora, final, staging, spec)
    if not drift.facts["alters"]:
        if drift.details:
            raise PlanError("Nothing here can be changed in place: " + " ".join(drift.details))
        raise PlanError("Snowflake already has every Aurora column with room for its values; nothing to change.")
    # Runbook "Schema Mismatch" steps 2-3: the final table first, then staging.
    steps = tuple(drift.facts["alters"]) + (f"DESCRIBE TASK {spec.merge_task}  — warn if the merge does not "
                                            "mention the new columns (runbook step 4)",)
    facts = (drift.summary,) + tuple(f"not changed here: {u}" for u in drift.facts["unfixable"])
    added = sorted({c for cols in drift.facts["missing"].values() for c in cols})
    return Plan(ActionKind.FIX_COLUMNS, spec.name, steps, facts,
                {"changes": drift.facts["changes"], "added": added, "merge_task": spec.merge_task})


def _resume_task(spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan:
    state = gw.snowflake.task_states([spec.merge_task]).get(spec.merge_task)
    if state is None:
        raise PlanError(f"The merge task {spec.merge_task} cannot be found (dropped, or this role lacks MONITOR).")
    if state.state != "suspended":
        raise PlanError(f"The merge task {spec.merge_task} is already {state.state}.")
    return Plan(ActionKind.RESUME_TASK, spec.name, (f"ALTER TASK {spec.merge_task} RESUME",),
                (f"merge task {spec.merge_task} is suspended; schedule {state.schedule or 'after its predecessor'}",
                 "its next run merges what staging gathered meanwhile"), {"merge_task": spec.merge_task})


def _retry(spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan:
    failed = sorted({r.file_name for r in gw.snowflake.copy_history(spec.staging_table) if r.failed})
    if not failed:
        raise PlanError("No failed files in the last 4 hours; nothing to retry.")
    definition = gw.snowflake.definition("PIPE", spec.pipe)
    names = relative_to_source(definition, failed)
    # %-formatting turns the doubled %% of a literal % back into one; replacing them first would not.
    shown = copy_with_files(definition, len(names)) % tuple(f"'{n}'" for n in names)
    facts = (f"{len(failed)} files failed to load in the last 4 hours",
             "ALTER PIPE … REFRESH would skip them: failed files are already in the load history")
    return Plan(ActionKind.RETRY_FILES, spec.name, (shown,), facts, {"definition": definition, "files": failed})


def _resync(spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan:
    task = gw.dms.task(spec.dms_task)
    if task.status != "running":
        raise PlanError(f"DMS ReloadTables needs the task running, and {task.identifier} is {task.status}: "
                        "restart the task first.")
    staging_rows, final_rows = gw.snowflake.row_count(spec.staging_table), gw.snowflake.row_count(spec.final_table)
    estimate = gw.aurora.row_estimate(spec.source_schema, spec.source_table)
    steps = (f"TRUNCATE TABLE {spec.staging_table}", f"TRUNCATE TABLE {spec.final_table}",
             f"AWS DMS ReloadTables(ReplicationTaskArn={task.arn}, TablesToReload=[{{SchemaName: "
             f"{spec.source_schema}, TableName: {spec.source_table}}}], ReloadOption=data-reload)",
             "follow DescribeTableStatistics until the reload has started and finished, Snowpipe and the merge "
             "until the final table holds Aurora's rows (fewer than 90% is a failed re-sync), then diagnose again")
    facts = (f"{spec.staging_table}: {staging_rows:,} rows now (deleted)",
             f"{spec.final_table}: {final_rows:,} rows now (deleted, then reloaded)",
             f"Aurora {spec.source}: ≈{estimate:,} rows to reload" if estimate is not None
             else f"Aurora {spec.source}: row estimate unavailable",
             f"DMS task {task.identifier} is {task.status}; only this table is reloaded")
    # Everything the worker touches is fixed here and bound by the approval: an edited catalog cannot
    # make an approved re-sync truncate other tables.
    return Plan(ActionKind.RESYNC, spec.name, steps, facts, {
        "task_arn": task.arn, "source_schema": spec.source_schema, "source_table": spec.source_table,
        "staging_table": spec.staging_table, "final_table": spec.final_table, "pipe": spec.pipe})


_BUILDERS = {
    ActionKind.RESTART_TASK: _restart,
    ActionKind.PAUSE_PIPE: _pipe(True),
    ActionKind.RESUME_PIPE: _pipe(False),
    ActionKind.FIX_COLUMNS: _fix_columns,
    ActionKind.RESUME_TASK: _resume_task,
    ActionKind.RETRY_FILES: _retry,
    ActionKind.RESYNC: _resync,
}
