"""Each check is a pure function of gateway data: no I/O in these tests."""
from dataclasses import replace
from datetime import datetime, timedelta, timezone

from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.gateways.aurora import PgColumn, Slot
from bot.gateways.dms import Series, TableStat, TaskInfo
from bot.diagnostics.layout import Listed, Located
from bot.gateways.s3 import CdcFiles, CdcLayout
from bot.gateways.snowflake import LoadRecord, PipeStatus, SfColumn
from bot.models import Status

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)
SPEC = parse_catalog('[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
ARN = "arn:aws:dms:us-east-1:123456789012:task:UPIIRRYFTHAI7AAEHCM6X5CAFXH2ODSHQ7M3WUA"


def task(status="running", **kw):
    return TaskInfo("aurora-snowflake-cdc", ARN, status, **kw)


def stat(state="Table completed"):
    return TableStat("public", "orders", state)


def test_task_resource_id_is_the_arn_suffix():
    assert task().resource_id == "UPIIRRYFTHAI7AAEHCM6X5CAFXH2ODSHQ7M3WUA"


def test_dms_running_and_table_completed_is_ok():
    result = checks.check_dms(task(), stat())
    assert result.status is Status.OK and result.facts["running"] is True


def test_dms_failed_task_shows_stop_reason_and_failure():
    result = checks.check_dms(task("failed", stop_reason="FATAL_ERROR", last_failure_message="connection lost",
                                   stats={"TablesErrored": 2}), stat("Table error"))
    assert result.status is Status.FAILING and "FATAL_ERROR" in result.summary
    assert "LastFailureMessage: connection lost" in result.details and "TablesErrored: 2" in result.details


def test_dms_running_but_table_error_fails():
    result = checks.check_dms(task(), stat("Table error"))
    assert result.status is Status.FAILING and result.facts["table_errored"]


def test_dms_table_missing_from_statistics_warns():
    assert checks.check_dms(task(), None).status is Status.WARNING


def test_latency_thresholds_and_trend():
    def series(*values):
        pts = tuple((NOW - timedelta(minutes=5 * (len(values) - i)), v) for i, v in enumerate(values))
        return {"CDCLatencySource": Series("CDCLatencySource", pts), "CDCLatencyTarget": Series("CDCLatencyTarget", pts)}

    assert checks.check_latency(series(3, 4, 5)).status is Status.OK
    assert checks.check_latency(series(3, 400)).status is Status.WARNING
    high = checks.check_latency(series(3, 600, 4000))
    assert high.status is Status.FAILING and high.facts["high"] and high.trend.count("▁") >= 1
    empty = checks.check_latency({"CDCLatencySource": Series("CDCLatencySource")})
    assert empty.status is Status.WARNING and "no CDC latency datapoints" in empty.summary


def listed(files):
    layout = CdcLayout("acme-cdc", "dms/public/orders/", "dms/public/orders/")
    return Listed(Located(layout), replace(files, layout=layout, listed=(layout.cdc_base,)))


def test_s3_files_landing_vs_none():
    landing = checks.check_s3(listed(CdcFiles("dms/public/orders/20261126-025500000.csv", NOW - timedelta(minutes=5), 7,
                                              timedelta(hours=1))), SPEC, NOW)
    assert landing.status is Status.OK and landing.facts["files_landing"] is True
    quiet = checks.check_s3(listed(CdcFiles("k", NOW - timedelta(hours=3), 0, timedelta(hours=6))), SPEC, NOW)
    assert quiet.status is Status.WARNING and quiet.facts["files_landing"] is False and "3h00m" in quiet.summary
    none = checks.check_s3(listed(CdcFiles(None, None, 0, timedelta(days=7))), SPEC, NOW)
    assert none.status is Status.FAILING and "7d under s3://acme-cdc/dms/public/orders/" in none.summary


def test_snowpipe_failed_status_compared_case_insensitively_with_first_error():
    history = [LoadRecord("a.csv", "LOAD FAILED", 0, "Number of columns in file (8) does not match that of the "
                                                      "corresponding table (6)", NOW),
               LoadRecord("b.csv", "Partially loaded", 3, "Numeric value 'x' is not recognized", NOW),
               LoadRecord("c.csv", "Loaded", 10, "", NOW)]
    result = checks.check_snowpipe(PipeStatus("RUNNING"), history, SPEC)
    assert result.status is Status.FAILING
    assert result.facts["failed_files"] == ["a.csv", "b.csv"] and result.facts["column_mismatch"] is True
    assert any("Numeric value 'x'" in d for d in result.details)


def test_snowpipe_paused_fails_and_running_clean_is_ok():
    paused = checks.check_snowpipe(PipeStatus("PAUSED", pending_file_count=12), [], SPEC)
    assert paused.status is Status.FAILING and paused.facts["running"] is False and "PAUSED" in paused.summary
    ok = checks.check_snowpipe(PipeStatus("RUNNING"), [LoadRecord("c.csv", "Loaded", 1, "", NOW)], SPEC)
    assert ok.status is Status.OK


def test_snowpipe_lists_at_most_five_failures_with_a_count():
    history = [LoadRecord(f"{i}.csv", "Load failed", 0, "bad", NOW) for i in range(9)]
    result = checks.check_snowpipe(PipeStatus("RUNNING"), history, SPEC)
    assert result.details[-1] == "… and 4 more failed files"


def test_freshness_against_threshold():
    assert checks.check_freshness(NOW - timedelta(minutes=10), SPEC, NOW).status is Status.OK
    assert checks.check_freshness(NOW - timedelta(minutes=90), SPEC, NOW).status is Status.WARNING
    stale = checks.check_freshness(NOW - timedelta(hours=3), SPEC, NOW)
    assert stale.status is Status.FAILING and stale.facts["stale"] and "limit 2h00m" in stale.summary
    assert checks.check_freshness(None, SPEC, NOW).status is Status.FAILING


def test_schema_drift_gives_exact_alters_final_first():
    aurora = [PgColumn("id", "bigint"), PgColumn("note", "character varying", char_length=64),
              PgColumn("amount", "numeric", precision=12, scale=2)]
    final = {"ID": SfColumn("ID", "NUMBER", None, 19, 0)}
    staging = {"ID": SfColumn("ID", "NUMBER", None, 19, 0), "NOTE": SfColumn("NOTE", "TEXT", 64)}
    result = checks.check_schema(aurora, final, staging, SPEC)
    assert result.status is Status.FAILING
    assert result.facts["alters"] == [
        "ALTER TABLE PUBLIC.ORDERS ADD COLUMN NOTE VARCHAR(64);",
        "ALTER TABLE PUBLIC.ORDERS ADD COLUMN AMOUNT NUMBER(12,2);",
        "ALTER TABLE STAGING.ORDERS_CDC ADD COLUMN AMOUNT NUMBER(12,2);",
    ]
    assert checks.check_schema(aurora[:1], final, staging, SPEC).status is Status.OK


def test_slot_states():
    ok = Slot("dms", "test_decoding", True, "reserved", 1024)
    assert checks.check_slot([ok]).status is Status.OK
    assert checks.check_slot([Slot("dms", "test_decoding", False, "extended", 1024)]).status is Status.WARNING
    big = checks.check_slot([Slot("dms", "test_decoding", True, "reserved", 20 * 1024**3)])
    assert big.status is Status.WARNING and "20 GiB" in big.details[0]
    lost = checks.check_slot([Slot("dms", "test_decoding", False, "lost", None)])
    assert lost.status is Status.FAILING and lost.facts["slot_problem"]
    assert checks.check_slot([]).status is Status.WARNING
