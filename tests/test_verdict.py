"""The runbook's decision table, fed hand-made check results."""
from bot.diagnostics.verdict import decide
from bot.models import ActionKind, CheckName, CheckResult, Section, Status, Where


def ok(name, **facts):
    return CheckResult(name, Status.OK, "ok", facts=facts)


def bad(name, **facts):
    return CheckResult(name, Status.FAILING, "bad", facts=facts)


HEALTHY = {
    CheckName.DMS: ok(CheckName.DMS, running=True, table_errored=False),
    CheckName.LATENCY: ok(CheckName.LATENCY, high=False),
    CheckName.S3: ok(CheckName.S3, files_landing=True),
    CheckName.SNOWPIPE: ok(CheckName.SNOWPIPE, running=True, failed_files=[], column_mismatch=False),
    CheckName.FRESHNESS: ok(CheckName.FRESHNESS, stale=False),
    CheckName.SCHEMA: ok(CheckName.SCHEMA, alters=[]),
    CheckName.SLOT: ok(CheckName.SLOT, slot_problem=False),
}


def verdict(**replace):
    checks = dict(HEALTHY)
    for name, result in replace.items():
        checks[CheckName[name]] = result
    return decide(tuple(checks.values()))


def test_all_ok_is_healthy_with_no_buttons():
    v, actions = verdict()
    assert (v.section, v.where, actions) == (Section.HEALTHY, Where.NONE, ())


def test_task_not_running_is_lagging_upstream_with_restart():
    v, actions = verdict(DMS=bad(CheckName.DMS, running=False, table_errored=False),
                         S3=CheckResult(CheckName.S3, Status.WARNING, "none", facts={"files_landing": False}),
                         FRESHNESS=bad(CheckName.FRESHNESS, stale=True))
    assert (v.section, v.where) == (Section.LAGGING, Where.UPSTREAM)
    assert actions[0] is ActionKind.RESTART_TASK


def test_running_task_without_new_files_and_stale_is_stalled():
    v, actions = verdict(S3=CheckResult(CheckName.S3, Status.WARNING, "none", facts={"files_landing": False}),
                         FRESHNESS=bad(CheckName.FRESHNESS, stale=True))
    assert (v.section, v.where) == (Section.STALLED, Where.UPSTREAM) and ActionKind.RESTART_TASK in actions


def test_quiet_source_with_fresh_data_is_healthy_with_a_note():
    v, _ = verdict(S3=CheckResult(CheckName.S3, Status.WARNING, "none", facts={"files_landing": False}))
    assert v.section is Section.HEALTHY and "quiet" in v.reasons[0]


def test_paused_pipe_with_files_landing_is_lagging_downstream_with_resume():
    v, actions = verdict(SNOWPIPE=bad(CheckName.SNOWPIPE, running=False, failed_files=[], column_mismatch=False,
                                      pipe_state="PAUSED", paused=True))
    assert (v.section, v.where, actions) == (Section.LAGGING, Where.DOWNSTREAM, (ActionKind.RESUME_PIPE,))


def test_column_count_error_in_load_history_alone_leads_to_schema_mismatch():
    v, actions = verdict(SNOWPIPE=bad(CheckName.SNOWPIPE, running=True, failed_files=["f.csv"], column_mismatch=True),
                         SCHEMA=CheckResult.unknown(CheckName.SCHEMA, "Aurora down"))
    assert (v.section, v.where) == (Section.SCHEMA, Where.DOWNSTREAM)
    assert ActionKind.RETRY_FILES in actions and ActionKind.PAUSE_PIPE in actions
    assert ActionKind.FIX_COLUMNS not in actions  # nothing to add is known while Aurora is unknown


def test_unknown_checks_are_not_evidence_and_never_report_healthy():
    v, actions = verdict(DMS=CheckResult.unknown(CheckName.DMS, "DMS did not answer within 8s"))
    assert v.section is Section.UNKNOWN and actions == ()
    assert "DMS did not answer" in v.reasons[0]


def test_a_dead_backend_does_not_hide_what_other_checks_prove():
    v, _ = verdict(DMS=CheckResult.unknown(CheckName.DMS, "timeout"),
                   SNOWPIPE=bad(CheckName.SNOWPIPE, running=False, failed_files=[], column_mismatch=False))
    assert (v.section, v.where) == (Section.LAGGING, Where.DOWNSTREAM)


def test_stale_with_files_loading_points_at_the_merge():
    v, _ = verdict(FRESHNESS=bad(CheckName.FRESHNESS, stale=True))
    assert (v.section, v.where) == (Section.LAGGING, Where.DOWNSTREAM) and "merge" in v.summary
