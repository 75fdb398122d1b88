"""Reload target: StartReplicationTask with reload-target, for a task that cannot resume because its
replication slot lost WAL DMS had not read. botocore's StartReplicationTaskType: for a full-load-and-cdc
task, "To load all the tables again, and start capturing source changes, use reload-target". It
reloads every table of the task, not one: two people, whatever the catalog says. A running task is
stopped first; a CDC-only task has no full load to redo, so it is refused with what to do instead."""
from __future__ import annotations

from dataclasses import dataclass

from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext
from .restart_task import stopped_first
from .task_slot import lost_slot


@dataclass(frozen=True)
class ReloadTargetPlan(PlanData):
    task: str
    task_arn: str
    stop_first: bool
    tables: tuple[str, ...]  # the catalog tables the reload reaches (every table of the task)


def prepare(s: Situation) -> tuple[ReloadTargetPlan, tuple[str, ...]]:
    task = s.gw.dms.task(s.spec.dms_task)
    if task.migration_type == "cdc":
        raise PlanError(f"The DMS task {task.identifier} is CDC-only (MigrationType cdc): reload-target has no full "
                        "load to redo. Recreate the replication slot and start the task with a CDC start point, "
                        "then reload the tables with a full-load task.")
    if task.never_ran:
        raise PlanError(f"The DMS task {task.identifier} has never run: start it (start-replication), which loads "
                        "every table anyway.")
    if task.status not in ("running", "stopped", "failed"):
        raise PlanError(f"The DMS task is {task.status}; it can be reloaded once it is running, stopped or failed.")
    sharing = tuple(sorted(t.name for t in s.tables if t.dms_task == s.spec.dms_task))
    lost, said = lost_slot(s.gw, task)
    facts = (f"task {task.identifier} is {task.status}" + (f" ({task.stop_reason})" if task.stop_reason else ""),
             f"every table of the task is loaded again: {len(sharing)} catalog tables ({', '.join(sharing)}) and "
             "any other table in its mappings", said)
    if lost:
        facts += ("if the source endpoint names this slot (SlotName), drop and recreate it first "
                  "(pg_drop_replication_slot, then pg_create_logical_replication_slot): DMS reads the slot by name",)
    return ReloadTargetPlan(task.identifier, task.arn, task.status == "running", sharing), facts


def steps(plan: ReloadTargetPlan) -> tuple[Step, ...]:
    start = Step("reload the target", lambda ctx: _reload(ctx, plan),
                 shown=f"AWS DMS StartReplicationTask(ReplicationTaskArn={plan.task_arn}, "
                       "StartReplicationTaskType=reload-target)  — reloads every table of the task")
    return stopped_first(plan, start)


def _reload(ctx: StepContext, plan: ReloadTargetPlan) -> str:
    if ctx.resumed and (status := ctx.gw.dms.task(plan.task).status) in ("starting", "running"):
        return f"the task was already {status}"
    status = ctx.gw.dms.start_task(plan.task_arn, "reload-target")
    return f"StartReplicationTask reload-target accepted; the task is {status}"


FIX = Fix(ActionKind.RELOAD_TARGET, "Reload target", ReloadTargetPlan, prepare, steps, people=2,
          confirm="Reload every table of the DMS task behind {table} (reload-target). This reloads everything "
                  "the task replicates.", diagnose_after=True)
