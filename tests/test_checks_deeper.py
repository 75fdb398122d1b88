"""What the runbook's words leave out, as pure checks and verdicts: column types, the merge task, rows
missing, and Snowpipe states beyond RUNNING/PAUSED. No I/O here."""
from datetime import datetime, timedelta, timezone

import pytest

from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.diagnostics.typemap import type_gap
from bot.diagnostics.verdict import decide
from bot.gateways.aurora import PgColumn, RowCount
from bot.gateways.dms import TableStat, TaskInfo
from bot.gateways.snowflake import PipeStatus, SfColumn, TaskRun, TaskState
from bot.models import ActionKind, CheckName, CheckResult, Section, Status, Where

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)
SPEC = parse_catalog('[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
HOSTILE = "X NUMBER; GRANT ROLE ACCOUNTADMIN TO USER MALLORY; --"


# -- column types ----------------------------------------------------------------------------------

@pytest.mark.parametrize("pg, sf, target", [
    (PgColumn("status", "character varying", char_length=255), SfColumn("STATUS", "TEXT", 64), "VARCHAR(255)"),
    (PgColumn("note", "text"), SfColumn("NOTE", "TEXT", 64), "VARCHAR"),
    (PgColumn("total", "numeric", precision=14, scale=2), SfColumn("TOTAL", "NUMBER", None, 10, 2), "NUMBER(14,2)"),
    # Snowflake keeps more decimals than Aurora: widen the integer digits, keep Snowflake's scale.
    (PgColumn("total", "numeric", precision=14, scale=2), SfColumn("TOTAL", "NUMBER", None, 12, 4), "NUMBER(16,4)"),
    (PgColumn("id", "bigint", precision=64, scale=0), SfColumn("ID", "NUMBER", None, 10, 0), "NUMBER(19,0)"),
])
def test_a_column_too_narrow_is_widened_in_place(pg, sf, target):
    gap = type_gap(pg, sf)
    assert gap is not None and gap.target == target


@pytest.mark.parametrize("pg, sf", [
    (PgColumn("status", "character varying", char_length=32), SfColumn("STATUS", "TEXT", 64)),
    (PgColumn("note", "text"), SfColumn("NOTE", "TEXT", 16_777_216)),
    # information_schema gives bigint a binary precision of 64; NUMBER(19,0) holds every bigint.
    (PgColumn("id", "bigint", precision=64, scale=0), SfColumn("ID", "NUMBER", None, 19, 0)),
    (PgColumn("total", "numeric", precision=10, scale=2), SfColumn("TOTAL", "NUMBER", None, 38, 2)),
    (PgColumn("created", "timestamp with time zone"), SfColumn("CREATED", "TIMESTAMP_NTZ")),
    (PgColumn("n", "integer"), SfColumn("N", "TEXT", 16_777_216)),  # anything loads into text
])
def test_columns_that_hold_their_values_are_left_alone(pg, sf):
    assert type_gap(pg, sf) is None


def test_what_snowflake_cannot_change_in_place_is_said_with_what_to_do():
    scale = type_gap(PgColumn("total", "numeric", precision=14, scale=4), SfColumn("TOTAL", "NUMBER", None, 14, 2))
    assert scale.target is None and "cannot change a column's scale in place" in scale.why
    assert "ADD COLUMN <col>_NEW NUMBER(14,4)" in scale.why and "re-sync" in scale.why
    family = type_gap(PgColumn("code", "text"), SfColumn("CODE", "NUMBER", None, 19, 0))
    assert family.target is None and "cannot change NUMBER(19,0) to VARCHAR in place" in family.why


def test_widened_columns_give_alter_column_statements_final_then_staging():
    aurora = [PgColumn("id", "bigint", precision=64, scale=0), PgColumn("status", "character varying", char_length=255)]
    narrow = {"ID": SfColumn("ID", "NUMBER", None, 19, 0), "STATUS": SfColumn("STATUS", "TEXT", 64)}
    result = checks.check_schema(aurora, narrow, dict(narrow), SPEC)
    assert result.status is Status.FAILING
    assert "column STATUS is character varying(255) in Aurora but VARCHAR(64) in Snowflake" in result.summary
    assert result.facts["alters"] == [
        "ALTER TABLE PUBLIC.ORDERS ALTER COLUMN STATUS SET DATA TYPE VARCHAR(255);",
        "ALTER TABLE STAGING.ORDERS_CDC ALTER COLUMN STATUS SET DATA TYPE VARCHAR(255);",
    ]
    assert result.facts["widened"] == ["STATUS"]


def test_reserved_words_are_quoted_and_odd_names_never_reach_sql():
    aurora = [PgColumn("id", "bigint"), PgColumn("order", "integer"), PgColumn(HOSTILE, "integer"),
              PgColumn("Total Due", "numeric", precision=10, scale=2)]
    have = {"ID": SfColumn("ID", "NUMBER", None, 19, 0)}
    result = checks.check_schema(aurora, have, dict(have), SPEC)
    assert result.facts["alters"] == ['ALTER TABLE PUBLIC.ORDERS ADD COLUMN "ORDER" NUMBER(10,0);',
                                      'ALTER TABLE STAGING.ORDERS_CDC ADD COLUMN "ORDER" NUMBER(10,0);']
    assert result.facts["bad_names"] == [HOSTILE, "Total Due"]
    assert "2 Aurora column name(s) are not plain identifiers" in result.summary
    assert not any("GRANT" in a or "Total" in a for a in result.facts["alters"])
    assert any("not put into any statement" in d for d in result.details)


def test_schema_verdict_names_widening_and_offers_fix_columns():
    narrow = {"STATUS": SfColumn("STATUS", "TEXT", 64)}
    schema = checks.check_schema([PgColumn("status", "character varying", char_length=255)], narrow, narrow, SPEC)
    pipe = CheckResult(CheckName.SNOWPIPE, Status.FAILING, "2 files failed",
                       facts={"running": True, "failed_files": ["a.csv"], "column_mismatch": False, "type_mismatch": True})
    verdict, actions = decide((schema, pipe))
    assert verdict.section is Section.SCHEMA and "widened" in verdict.summary
    assert actions == (ActionKind.FIX_COLUMNS, ActionKind.PAUSE_PIPE, ActionKind.RETRY_FILES)


def test_only_unchangeable_columns_give_schema_mismatch_without_a_button():
    have = {"TOTAL": SfColumn("TOTAL", "NUMBER", None, 14, 2)}
    schema = checks.check_schema([PgColumn("total", "numeric", precision=14, scale=4)], have, have, SPEC)
    verdict, actions = decide((schema,))
    assert verdict.section is Section.SCHEMA and "cannot be made in place" in verdict.summary
    assert ActionKind.FIX_COLUMNS not in actions


# -- Snowpipe states ---------------------------------------------------------------------------

def test_a_pipe_paused_past_the_notification_retention_is_stale():
    stale = PipeStatus("PAUSED", last_ingested_at=NOW - timedelta(days=20))
    result = checks.check_snowpipe(stale, [], SPEC, NOW)
    assert result.facts["stale"] and "stale" in result.summary and "20d" in result.summary
    verdict, actions = decide((result,))
    assert "SYSTEM$PIPE_FORCE_RESUME" in verdict.summary and "older than 14 days may not load" in verdict.summary
    assert actions == (ActionKind.RESUME_PIPE, ActionKind.RESYNC)
    recent = checks.check_snowpipe(PipeStatus("PAUSED", last_ingested_at=NOW - timedelta(days=2)), [], SPEC, NOW)
    assert not recent.facts["stale"]
    assert decide((recent,))[1] == (ActionKind.RESUME_PIPE,)


@pytest.mark.parametrize("state", sorted(checks.PIPE_STATES))
def test_every_documented_execution_state_is_explained(state):
    result = checks.check_snowpipe(PipeStatus(state), [], SPEC, NOW)
    assert result.status is Status.FAILING and checks.PIPE_STATES[state] in result.summary


def test_a_stopped_pipe_says_what_to_do_and_offers_no_resume():
    result = checks.check_snowpipe(PipeStatus("STOPPED_STAGE_DROPPED"), [], SPEC, NOW)
    verdict, actions = decide((result,))
    assert "stage was dropped" in verdict.summary and "CREATE OR REPLACE PIPE" in verdict.summary
    assert actions == ()


def test_error_and_fault_fields_are_each_explained():
    result = checks.check_snowpipe(PipeStatus("RUNNING", error="Remote file not found", fault="internal"),
                                   [], SPEC, NOW)
    assert result.status is Status.WARNING
    assert any(d.startswith("error: Remote file not found — the last error Snowpipe hit") for d in result.details)
    assert any(d.startswith("fault: internal — a fault inside Snowflake's Snowpipe service") for d in result.details)


# -- the merge task ---------------------------------------------------------------------------------

def runs(*spec):
    return [TaskRun(state, NOW - timedelta(minutes=m), NOW - timedelta(minutes=m) + timedelta(seconds=20), code, msg)
            for m, state, code, msg in spec]


def test_a_suspended_merge_task_is_the_named_cause_with_a_resume_button():
    state = TaskState("STAGING.ORDERS_MERGE", "suspended", "1 MINUTE")
    result = checks.check_merge_task(state, runs((190, "SUCCEEDED", "", "")), SPEC, NOW)
    assert result.status is Status.FAILING and result.summary == "merge task STAGING.ORDERS_MERGE is suspended"
    verdict, actions = decide((result,))
    assert (verdict.section, verdict.where) == (Section.LAGGING, Where.DOWNSTREAM)
    assert "STAGING.ORDERS_MERGE is suspended" in verdict.summary and actions == (ActionKind.RESUME_TASK,)


def test_a_merge_task_whose_last_runs_failed_shows_the_error():
    state = TaskState("STAGING.ORDERS_MERGE", "started", "5 MINUTE")
    failed = runs((2, "FAILED", "100038", "Numeric value 'abc' is not recognized"),
                  (7, "FAILED", "100038", "Numeric value 'abc' is not recognized"), (12, "SUCCEEDED", "", ""))
    result = checks.check_merge_task(state, failed, SPEC, NOW)
    assert result.facts["failing"] and "last 2 run(s) failed: 100038 Numeric value 'abc'" in result.summary
    verdict, actions = decide((result,))
    assert "100038 Numeric value 'abc' is not recognized" in verdict.summary and actions == ()


def test_a_started_task_that_stopped_running_on_schedule_is_overdue():
    state = TaskState("STAGING.ORDERS_MERGE", "started", "5 MINUTE")
    late = checks.check_merge_task(state, runs((40, "SUCCEEDED", "", "")), SPEC, NOW)
    assert late.facts["overdue"] and "has not run for 40m (scheduled every 5m" in late.summary
    on_time = checks.check_merge_task(state, runs((4, "SUCCEEDED", "", ""), (9, "SKIPPED", "", "")), SPEC, NOW)
    assert on_time.status is Status.OK


def test_schedules_in_minutes_hours_and_cron():
    assert checks.schedule_interval("5 MINUTE", NOW) == timedelta(minutes=5)
    assert checks.schedule_interval("60 M", NOW) == timedelta(hours=1)
    assert checks.schedule_interval("USING CRON 0 * * * * UTC", NOW) == timedelta(hours=1)
    assert checks.schedule_interval("USING CRON nonsense UTC", NOW) is None


def test_a_missing_merge_task_is_failing():
    result = checks.check_merge_task(None, [], SPEC, NOW)
    assert result.status is Status.FAILING and "not found" in result.summary


# -- rows missing -----------------------------------------------------------------------------------

BUSY = TaskInfo("cdc", "arn:aws:dms:us-east-1:1:task:X", "running", stats={"ElapsedTimeMillis": 24 * 3600 * 1000})


def test_a_busy_healthy_table_is_not_data_missing():
    """200 inserts a second, the final table 5 minutes behind, Aurora's count an estimate."""
    stat = TableStat("public", "orders", "Table completed", inserts=200 * 24 * 3600)
    result = checks.check_rows(RowCount(10_250_000, False), 10_100_000, NOW - timedelta(minutes=5), BUSY, stat,
                               SPEC, NOW)
    assert result.status is Status.OK and not result.facts["missing_rows"]


def test_a_gap_the_lag_cannot_explain_is_data_missing_with_both_numbers():
    stat = TableStat("public", "orders", "Table completed", inserts=2 * 24 * 3600)  # 2 a second
    result = checks.check_rows(RowCount(480_000, True), 310_000, NOW - timedelta(minutes=5), BUSY, stat, SPEC, NOW)
    assert result.facts["missing_rows"] and "170,000 rows missing" in result.summary
    assert "Aurora has 480,000 (exact)" in result.summary and "PUBLIC.ORDERS has 310,000" in result.summary
    verdict, actions = decide((result,))
    assert verdict.section is Section.LAGGING and "480,000" in verdict.summary and actions == (ActionKind.RESYNC,)


def test_the_allowance_follows_the_lag():
    stat = TableStat("public", "orders", "Table completed", inserts=2 * 24 * 3600)
    count = RowCount(480_000, True)
    assert checks.check_rows(count, 470_000, NOW - timedelta(hours=2), BUSY, stat, SPEC, NOW).status is Status.OK
    assert checks.check_rows(count, 470_000, NOW - timedelta(minutes=1), BUSY, stat, SPEC, NOW).facts["missing_rows"]


def test_a_just_restarted_task_gives_no_insert_rate():
    young = TaskInfo("cdc", "arn", "running", stats={"ElapsedTimeMillis": 100})
    stat = TableStat("public", "orders", "Table completed", inserts=1_000_000)
    result = checks.check_rows(RowCount(100_000, True), 10_000, NOW, young, stat, SPEC, NOW)
    assert result.facts["missing_rows"]


def test_a_pipe_paused_by_an_administrator_gets_no_resume_button():
    result = checks.check_snowpipe(PipeStatus("PAUSED_BY_SNOWFLAKE_ADMIN"), [], SPEC, NOW)
    verdict, actions = decide((result,))
    assert "open a support case before resuming" in verdict.summary and actions == ()


def test_an_odd_column_name_snowflake_already_has_is_no_problem():
    aurora = [PgColumn("Total Due", "numeric", precision=10, scale=2)]
    have = {"TOTAL DUE": SfColumn("TOTAL DUE", "NUMBER", None, 10, 2)}
    assert checks.check_schema(aurora, have, dict(have), SPEC).status is Status.OK
    narrow = {"TOTAL DUE": SfColumn("TOTAL DUE", "NUMBER", None, 8, 2)}
    result = checks.check_schema(aurora, narrow, dict(narrow), SPEC)
    assert result.facts["alters"] == [] and "change it by hand" in result.facts["unfixable"][0]
