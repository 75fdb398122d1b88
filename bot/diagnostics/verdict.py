"""The runbook as a decision: which section applies, where the break is, which fixes to offer.

Pure: reads only the checks' statuses and facts. Unknown checks never count as evidence either way;
when the checks that decide are unknown and nothing else fails, the answer is "could not verify"."""
from __future__ import annotations

from ..models import ActionKind, CheckName, CheckResult, Section, Status, Verdict, Where

_DECIDING = (CheckName.DMS, CheckName.S3, CheckName.SNOWPIPE, CheckName.FRESHNESS)


def decide(checks: tuple[CheckResult, ...]) -> tuple[Verdict, tuple[ActionKind, ...]]:
    by = {c.name: c for c in checks}

    def fact(name: CheckName, key: str, default=None):
        check = by.get(name)
        if check is None or check.status is Status.UNKNOWN:
            return default
        return check.facts.get(key, default)

    pipe_running = fact(CheckName.SNOWPIPE, "running")
    failed_files = fact(CheckName.SNOWPIPE, "failed_files", [])
    mismatch = fact(CheckName.SNOWPIPE, "column_mismatch", False)
    missing_cols = bool(fact(CheckName.SCHEMA, "alters", []))
    task_running = fact(CheckName.DMS, "running")
    table_errored = fact(CheckName.DMS, "table_errored", False)
    files_landing = fact(CheckName.S3, "files_landing")
    stale = fact(CheckName.FRESHNESS, "stale")
    latency_high = fact(CheckName.LATENCY, "high", False)
    slot_problem = fact(CheckName.SLOT, "slot_problem", False)
    pause = (ActionKind.PAUSE_PIPE,) if pipe_running else ()
    retry = (ActionKind.RETRY_FILES,) if failed_files else ()

    if mismatch or missing_cols:
        reasons = []
        if mismatch:
            reasons.append("Snowpipe rejects files: 'Number of columns in file does not match table'")
        if missing_cols:
            reasons.append("Aurora has columns the Snowflake tables lack")
        actions = ((ActionKind.ADD_COLUMNS,) if missing_cols else ()) + pause + retry
        return Verdict(Section.SCHEMA, Where.DOWNSTREAM,
                       "A column was added in Aurora but not in Snowflake, so Snowpipe cannot load new files.",
                       tuple(reasons)), actions

    if task_running is False or table_errored:
        why = "The DMS task is not running" if task_running is False else "DMS reports an error on this table"
        # ReloadTables needs a running task: a stopped one is restarted first, an errored table re-synced.
        actions = (ActionKind.RESTART_TASK,) if task_running is False else (ActionKind.RESYNC,)
        return Verdict(Section.LAGGING, Where.UPSTREAM,
                       f"{why}, so no changes leave Aurora. Resolve the cause shown below, then restart the task.",
                       _reasons(by, CheckName.DMS, CheckName.S3, CheckName.SLOT)), actions

    if task_running and files_landing is False and (stale or latency_high or slot_problem):
        return Verdict(Section.STALLED, Where.UPSTREAM,
                       "The DMS task is running but no new CDC files reach S3. Check the latency and the "
                       "replication slot below, then restart the task.",
                       _reasons(by, CheckName.S3, CheckName.LATENCY, CheckName.SLOT, CheckName.FRESHNESS)), (
            ActionKind.RESTART_TASK, ActionKind.RESYNC)

    if pipe_running is False:
        resume = (ActionKind.RESUME_PIPE,)
        return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                       "CDC files reach S3 but the Snowpipe is not loading them. Resume the pipe.",
                       _reasons(by, CheckName.SNOWPIPE, CheckName.S3, CheckName.FRESHNESS)), resume + retry

    if failed_files:
        return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                       "Snowpipe fails to load some files: check the file format errors below, then retry them.",
                       _reasons(by, CheckName.SNOWPIPE)), retry + pause

    if stale:
        where = Where.DOWNSTREAM if files_landing else Where.UNKNOWN
        summary = ("Files land and load, but the final table is stale: the merge task is not keeping up."
                   if files_landing else "The final table is stale and the checks do not show why.")
        return Verdict(Section.LAGGING, where, summary,
                       _reasons(by, CheckName.FRESHNESS, CheckName.S3, CheckName.SNOWPIPE)), (ActionKind.RESYNC,)

    unknown = [by[n] for n in _DECIDING if n in by and by[n].status is Status.UNKNOWN]
    if unknown:
        return Verdict(Section.UNKNOWN, Where.UNKNOWN,
                       "Nothing is failing in what could be checked, but some checks could not run.",
                       tuple(f"{c.name}: {c.summary}" for c in unknown)), ()

    notes = []
    if files_landing is False:
        notes.append("No CDC files in the last hour while the table is fresh: the source is quiet.")
    # Healthy by the runbook, but say what else looks off rather than hide it under a green verdict.
    notes += [f"Also: {c.name}: {c.summary}" for c in checks
              if c.status in (Status.FAILING, Status.WARNING) and c.name is not CheckName.S3]
    summary = "The sync is flowing." if notes else "Every runbook check passes."
    return Verdict(Section.HEALTHY, Where.NONE, summary, tuple(notes)), ()


def _reasons(by: dict[CheckName, CheckResult], *names: CheckName) -> tuple[str, ...]:
    return tuple(f"{by[n].name}: {by[n].summary}" for n in names
                 if n in by and by[n].status in (Status.FAILING, Status.WARNING))
