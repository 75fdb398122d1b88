"""The runbook as a decision: which section applies, where the break is, which fixes to offer.

Pure: reads only the checks' statuses and facts. Unknown checks never count as evidence either way;
when the checks that decide are unknown and nothing else fails, the answer is "could not verify"."""
from __future__ import annotations

from ..models import ActionKind, CheckName, CheckResult, Section, Status, Verdict, Where

_DECIDING = (CheckName.DMS, CheckName.S3, CheckName.SNOWPIPE, CheckName.FRESHNESS)


def decide(checks: tuple[CheckResult, ...]) -> tuple[Verdict, tuple[ActionKind, ...]]:
    verdict, actions = _decide(checks)
    return _within_migration_type({c.name: c for c in checks}, verdict, actions)


def resync_refused(checks: tuple[CheckResult, ...]) -> str:
    """Why the task cannot re-sync a table, or "" when it can (or the DMS check could not tell).
    Re-sync reloads with ReloadTables, which DMS runs only for a task of MigrationType full-load or
    full-load-and-cdc (DMS user guide, "Reloading tables during a task")."""
    dms = next((c for c in checks if c.name is CheckName.DMS), None)
    slot = next((c for c in checks if c.name is CheckName.SLOT), None)
    if dms is None or dms.status is Status.UNKNOWN:
        return ""
    if not dms.facts.get("reloads_tables", True):
        return resync_refusal(dms.facts.get("migration_type") or "unknown")
    if dms.facts.get("running") is False and slot is not None and slot.facts.get("lost"):
        return ("Re-sync is not offered: ReloadTables needs the task running, and it cannot run again from its "
                "lost slot. Reload the target instead.")
    return ""


def _within_migration_type(by: dict[CheckName, CheckResult], verdict: Verdict,
                           actions: tuple[ActionKind, ...]) -> tuple[Verdict, tuple[ActionKind, ...]]:
    """A CDC-only task is never offered a re-sync, and the answer says what to do instead."""
    note = resync_refused(tuple(by.values()))
    if ActionKind.RESYNC not in actions or not note:
        return verdict, actions
    # The summary's own advice to re-sync goes with the button; the reason and the way out take its place.
    kept = [s for s in verdict.summary.split(". ") if "re-sync" not in s.lower()]
    summary = ". ".join(kept).rstrip(".") + ". " + note
    return (Verdict(verdict.section, verdict.where, summary, verdict.reasons),
            tuple(a for a in actions if a is not ActionKind.RESYNC))


def resync_refusal(migration_type: str) -> str:
    """Why a re-sync cannot run on this task, and what to do instead (the request path says it too)."""
    return (f"Re-sync is not offered: the DMS task's MigrationType is {migration_type}, and ReloadTables reloads "
            "only tasks of type full-load or full-load-and-cdc. Reload the table with a separate full-load task "
            "for it (or change the task to full-load-and-cdc), then let CDC continue.")


def _decide(checks: tuple[CheckResult, ...]) -> tuple[Verdict, tuple[ActionKind, ...]]:
    by = {c.name: c for c in checks}

    def fact(name: CheckName, key: str, default=None):
        check = by.get(name)
        if check is None or check.status is Status.UNKNOWN:
            return default
        return check.facts.get(key, default)

    pipe_running = fact(CheckName.SNOWPIPE, "running")
    failed_files = fact(CheckName.SNOWPIPE, "failed_files", [])
    mismatch = fact(CheckName.SNOWPIPE, "column_mismatch", False)
    schema = by.get(CheckName.SCHEMA)
    schema_broken = None if schema is None or schema.status is Status.UNKNOWN else schema.status is Status.FAILING
    type_errors = fact(CheckName.SNOWPIPE, "type_mismatch", False)
    task_running = fact(CheckName.DMS, "running")
    table_errored = fact(CheckName.DMS, "table_errored", False)
    files_landing = fact(CheckName.S3, "files_landing")
    stale = fact(CheckName.FRESHNESS, "stale")
    latency_high = fact(CheckName.LATENCY, "high", False)
    slot_problem = fact(CheckName.SLOT, "slot_problem", False)
    pause = (ActionKind.PAUSE_PIPE,) if pipe_running else ()
    retry = (ActionKind.RETRY_FILES,) if failed_files else ()
    full_loads = fact(CheckName.SNOWPIPE, "full_load_mismatch", [])

    if mismatch or schema_broken or (type_errors and schema_broken is not False):
        return _schema(by, mismatch, type_errors, pause, retry)

    if full_loads:  # only full-load files refused on their column count, and no column differs
        return _full_load_files(by, full_loads)

    if fact(CheckName.SLOT, "lost", False):
        return _slot_lost(by, task_running)

    if task_running is False or table_errored:
        why = "The DMS task is not running" if task_running is False else "DMS reports an error on this table"
        if fact(CheckName.DMS, "never_ran", False):
            return Verdict(Section.LAGGING, Where.UPSTREAM,
                           "The DMS task has never run (status ready), so nothing leaves Aurora. Start it: the "
                           "first run of a task is start-replication (a full load, then CDC), never a resume.",
                           _reasons(by, CheckName.DMS, CheckName.S3)), (ActionKind.RESTART_TASK,)
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
        return _pipe_stopped(by, retry)

    if failed_files:
        return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                       "Snowpipe fails to load some files: check the file format errors below, then retry them.",
                       _reasons(by, CheckName.SNOWPIPE)), retry + pause

    merge = by.get(CheckName.MERGE_TASK)
    if merge is not None and merge.status is Status.FAILING:
        return _merge_task(by, merge)

    if fact(CheckName.ROWS, "missing_rows", False):
        rows = by[CheckName.ROWS].facts
        return Verdict(Section.LAGGING, Where.UNKNOWN,
                       f"Data missing: Aurora holds {rows['aurora_rows']:,} rows and the final table "
                       f"{rows['final_rows']:,}, a gap the current lag cannot explain. Re-sync the table.",
                       _reasons(by, CheckName.ROWS, CheckName.DMS, CheckName.SNOWPIPE, CheckName.FRESHNESS)), (
            ActionKind.RESYNC,)

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


def _schema(by: dict[CheckName, CheckResult], mismatch: bool, type_errors: bool, pause: tuple,
            retry: tuple) -> tuple[Verdict, tuple[ActionKind, ...]]:
    schema = by.get(CheckName.SCHEMA)
    facts = schema.facts if schema is not None and schema.status is not Status.UNKNOWN else {}
    reasons = []
    if mismatch:
        reasons.append("Snowpipe rejects files: 'Number of columns in file does not match table'")
    if type_errors:
        reasons.append("Snowpipe rejects values their Snowflake column cannot hold (too long or too many digits)")
    if schema is not None and schema.status is Status.FAILING:
        reasons.append(f"{schema.name}: {schema.summary}")
    added, widened = bool(facts.get("missing")), bool(facts.get("widened"))
    stuck = bool(facts.get("unfixable") or facts.get("bad_names"))
    what = " and ".join(w for w, on in (("added", added or mismatch), ("widened", widened or type_errors)) if on)
    summary = (f"A column was {what or 'changed'} in Aurora but not in Snowflake, so Snowpipe cannot load new files."
               + (" Fix columns applies the statements below, final table then staging." if facts.get("alters") else "")
               + (" Some changes cannot be made in place: see the evidence for what to do." if stuck else ""))
    actions = ((ActionKind.FIX_COLUMNS,) if facts.get("alters") else ()) + pause + retry
    return Verdict(Section.SCHEMA, Where.DOWNSTREAM, summary, tuple(reasons)), actions


def _full_load_files(by: dict[CheckName, CheckResult], files: list[str]) -> tuple[Verdict, tuple[ActionKind, ...]]:
    """Not Schema Mismatch: no column differs between Aurora and Snowflake. With IncludeOpForFullLoad
    false (botocore's S3Settings default) the full-load files a (re)load writes have no Op column, while
    the staging table and the pipe's COPY are laid out for CDC files, which have it. Fix columns would add
    nothing and retrying the same files fails again; what changes it is the endpoint or the COPY."""
    known = by[CheckName.SNOWPIPE].facts.get("op_setting_known")
    setting = "the S3 target endpoint has IncludeOpForFullLoad false" if known else (
        "the S3 target endpoint could not be read; IncludeOpForFullLoad is false unless set")
    summary = (f"Snowpipe refuses {len(files)} full-load file(s) (LOAD…) on their column count, but no column was "
               f"added in Aurora: {setting}, so full-load files have no Op column while CDC files (and the staging "
               "table) have it. Set IncludeOpForFullLoad to true on the target endpoint (ModifyEndpoint "
               "S3Settings) so future loads carry Op, or load LOAD files with their own COPY (a pipe or COPY INTO "
               "with a column list that fills OP with 'I'); then load the refused files again.")
    return Verdict(Section.LAGGING, Where.DOWNSTREAM, summary,
                   _reasons(by, CheckName.SNOWPIPE, CheckName.SCHEMA, CheckName.FRESHNESS)), ()


def _slot_lost(by: dict[CheckName, CheckResult], task_running: bool | None) -> tuple[Verdict, tuple[ActionKind, ...]]:
    """WAL the task had not read is gone (wal_status lost): resume-processing fails again, so no Restart
    that resumes. What works is a new full load: a re-sync of the tables (ReloadTables, a running task
    of a type that loads tables), or reloading the whole target."""
    slot = by[CheckName.SLOT].facts.get("slot", "")
    dms = by.get(CheckName.DMS)
    loads = dms is None or dms.status is Status.UNKNOWN or dms.facts.get("reloads_tables", True)
    if not loads:  # CDC-only: no full load to redo, neither per table nor for the whole target
        return Verdict(Section.STALLED, Where.UPSTREAM,
                       f"The task's replication slot {slot} lost WAL that DMS had not read (wal_status lost): the "
                       "task cannot resume, and restarting it with resume-processing fails again. The task is "
                       "CDC-only, so DMS has no full load to redo: recreate the slot, start the task from a CDC "
                       "start point, and reload the tables with a full-load task.",
                       _reasons(by, CheckName.SLOT, CheckName.DMS, CheckName.S3, CheckName.FRESHNESS)), ()
    summary = (f"The task's replication slot {slot} lost WAL that DMS had not read (wal_status lost): the task "
               "cannot resume, and restarting it with resume-processing fails again. The changes since then are "
               "gone from Aurora's WAL, so the tables need a new full load: "
               + ("re-sync this table while the task runs, or " if task_running else "")
               + "Reload target (StartReplicationTask reload-target: every table of the task, two people). With a "
                 "SlotName endpoint, recreate the slot first.")
    actions = ((ActionKind.RESYNC,) if task_running else ()) + (ActionKind.RELOAD_TARGET,)
    return Verdict(Section.STALLED, Where.UPSTREAM, summary,
                   _reasons(by, CheckName.SLOT, CheckName.DMS, CheckName.S3, CheckName.FRESHNESS)), actions


def _pipe_stopped(by: dict[CheckName, CheckResult], retry: tuple) -> tuple[Verdict, tuple[ActionKind, ...]]:
    pipe = by[CheckName.SNOWPIPE].facts
    reasons = _reasons(by, CheckName.SNOWPIPE, CheckName.S3, CheckName.FRESHNESS)
    if pipe.get("stale"):
        return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                       "The Snowpipe was paused longer than the 14 days Snowflake keeps its file notifications: it "
                       "is stale. Resume pipe force-resumes it (SYSTEM$PIPE_FORCE_RESUME with "
                       "STALENESS_CHECK_OVERRIDE); files older than 14 days may not load, so re-sync the table "
                       "to recover them.", reasons), (ActionKind.RESUME_PIPE, ActionKind.RESYNC)
    if pipe.get("paused"):
        return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                       "CDC files reach S3 but the Snowpipe is not loading them. Resume the pipe.",
                       reasons), (ActionKind.RESUME_PIPE,) + retry
    meaning = pipe.get("state_meaning") or "a state Snowflake does not document"
    return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                   f"The Snowpipe is {pipe.get('pipe_state')}: {meaning}.", reasons), ()


def _merge_task(by: dict[CheckName, CheckResult], merge: CheckResult) -> tuple[Verdict, tuple[ActionKind, ...]]:
    task = merge.facts.get("task", "the merge task")
    reasons = _reasons(by, CheckName.MERGE_TASK, CheckName.SNOWPIPE, CheckName.FRESHNESS)
    if merge.facts.get("suspended"):
        return Verdict(Section.LAGGING, Where.DOWNSTREAM,
                       f"Files land and load into staging, but the merge task {task} is suspended, so nothing "
                       "reaches the final table. Resume the merge task.", reasons), (ActionKind.RESUME_TASK,)
    if merge.facts.get("failing"):
        summary = (f"The merge task {task} fails ({merge.facts.get('error')}), so the final table falls behind. "
                   "Fix the error shown; the next run catches up.")
    elif merge.facts.get("missing"):
        summary = f"The merge task {task} cannot be found, so nothing merges staging into the final table."
    else:
        summary = (f"The merge task {task} is started but has stopped running on its schedule (a long-running "
                   "run, or its warehouse is suspended): check its current run.")
    return Verdict(Section.LAGGING, Where.DOWNSTREAM, summary, reasons), ()


def _reasons(by: dict[CheckName, CheckResult], *names: CheckName) -> tuple[str, ...]:
    return tuple(f"{by[n].name}: {by[n].summary}" for n in names
                 if n in by and by[n].status in (Status.FAILING, Status.WARNING))
