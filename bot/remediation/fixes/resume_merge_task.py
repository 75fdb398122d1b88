"""Resume merge task: a suspended Snowflake task that merges staging into the final table is resumed;
its next run merges what staging gathered meanwhile. A merge task that is a child in a task graph cannot
be resumed while the graph's root runs ("Unable to update graph with root task … since that root task is
not suspended"; https://docs.snowflake.com/en/user-guide/tasks-graphs): the root is suspended, the task
resumed, and the root resumed, each its own checkpointed statement."""
from __future__ import annotations

from dataclasses import dataclass

from ...models import ActionKind
from ..fix import Fix, PlanData, PlanError, Situation
from ..steps import Step, StepContext


@dataclass(frozen=True)
class ResumeTaskPlan(PlanData):
    merge_task: str
    root: str = ""  # the graph's root task when the merge task is a child; "" for a standalone task
    root_started: bool = False  # the root runs: it is suspended first, and resumed after


def prepare(s: Situation) -> tuple[ResumeTaskPlan, tuple[str, ...]]:
    task = s.spec.merge_task
    state = s.gw.snowflake.task_states([task]).get(task)
    if state is None:
        raise PlanError(f"The merge task {task} cannot be found (dropped, or this role lacks MONITOR).")
    if state.state != "suspended":
        raise PlanError(f"The merge task {task} is already {state.state}.")
    facts = (f"merge task {task} is suspended; schedule {state.schedule or 'after its predecessor'}"
             + (f" ({state.suspended_reason})" if state.suspended_reason else ""),
             "its next run merges what staging gathered meanwhile")
    if not state.child:
        return ResumeTaskPlan(task), facts
    root = _qualified(task, state.root)
    started = state.root_state == "started"
    return ResumeTaskPlan(task, root, started), facts + (
        f"it is a child in the task graph of {root}, which is {state.root_state or 'unknown'}: "
        + ("Snowflake refuses to resume a child while its root runs, so the root is suspended for the moment"
           if started else "the root is resumed after it, or the graph does not run"),)


def _qualified(task: str, root: str) -> str:
    """The root as the catalog names the merge task: with its database when the catalog gives one."""
    parts = task.split(".")
    return ".".join(parts[:-2] + root.split(".")[-2:]) if len(parts) == 3 else root


def steps(plan: ResumeTaskPlan) -> tuple[Step, ...]:
    def alter(task: str, verb: str) -> Step:
        def run(ctx: StepContext) -> str:
            # The same ALTER twice is harmless: a repeat after a crash changes nothing more.
            (ctx.gw.snowflake.suspend_task if verb == "SUSPEND" else ctx.gw.snowflake.resume_task)(task)
            return f"resumed merge task {task}" if task == plan.merge_task else f"ALTER TASK {task} {verb}: done"
        return Step(f"ALTER TASK {task} {verb}", run, shown=f"ALTER TASK {task} {verb}")
    child = alter(plan.merge_task, "RESUME")
    if not plan.root:
        return (child,)
    return ((alter(plan.root, "SUSPEND"),) if plan.root_started else ()) + (child, alter(plan.root, "RESUME"))


FIX = Fix(ActionKind.RESUME_TASK, "Resume merge task", ResumeTaskPlan, prepare, steps,
          confirm="This resumes the merge task of {table} (ALTER TASK … RESUME). A task in a graph whose root "
                  "runs is resumed as Snowflake allows: ALTER TASK <root> SUSPEND, ALTER TASK <task> RESUME, "
                  "ALTER TASK <root> RESUME.")
