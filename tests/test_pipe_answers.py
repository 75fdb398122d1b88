"""SYSTEM$PIPE_STATUS's error read with its lastPipeErrorTimestamp, and a plain resume that Snowflake refuses
said with the check that refused it and the statement that resumes the pipe."""
from datetime import datetime, timezone

from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.gateways.snowflake import FORCE_RESUME_SQL, OWNERSHIP_RESUME_SQL, parse_pipe_status
from bot.models import Status
from bot.remediation.fixes import resume_pipe

SPEC = parse_catalog('[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
NOW = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)


def status(error_at, ingested_at):
    return parse_pipe_status('{"executionState": "RUNNING", "pendingFileCount": 0, "error": "Access denied on the stage",'
                             f' "lastPipeErrorTimestamp": "{error_at}", "lastIngestedTimestamp": "{ingested_at}"}}')


def test_an_error_older_than_the_last_ingest_is_history():
    result = checks.check_snowpipe(status("2026-11-26T01:00:00Z", "2026-11-26T02:50:00Z"), [], SPEC, NOW)
    assert result.status is Status.OK
    assert any("history, the pipe has loaded since" in d for d in result.details)


def test_an_error_after_the_last_ingest_is_a_current_warning():
    result = checks.check_snowpipe(status("2026-11-26T02:55:00Z", "2026-11-26T02:50:00Z"), [], SPEC, NOW)
    assert result.status is Status.WARNING and "Access denied on the stage" in result.summary


def test_a_refused_plain_resume_says_which_check_and_the_statement_that_resumes():
    said = resume_pipe.refused_because("STAGING.ORDERS_PIPE", "Pipe was paused during an ownership transfer")
    assert "its ownership was transferred while it was paused" in said and "Nothing changed" in said
    assert "SELECT SYSTEM$PIPE_FORCE_RESUME('STAGING.ORDERS_PIPE', 'OWNERSHIP_TRANSFER_CHECK_OVERRIDE')" in said
    stale = resume_pipe.refused_because("STAGING.ORDERS_PIPE", "Pipe is stale: paused for more than 14 days")
    assert "'STALENESS_CHECK_OVERRIDE'" in stale and "press Resume pipe again" in stale
    assert "OWNERSHIP_TRANSFER_CHECK_OVERRIDE" in OWNERSHIP_RESUME_SQL and "STALENESS" in FORCE_RESUME_SQL
