"""The row-count check on small tables: the noise floor scales down with the table, so a fresh small
table missing a large share of its rows is Data Missing, while busy, lagging tables stay quiet."""
from datetime import datetime, timedelta, timezone

import pytest

from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.diagnostics.verdict import decide
from bot.gateways.aurora import RowCount
from bot.gateways.dms import TableStat, TaskInfo
from bot.models import ActionKind, Section, Status

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=timezone.utc)
SPEC = parse_catalog('[[tables]]\nname = "lookup"\nsource = "public.lookup"\n').tables[0]
QUIET = TaskInfo("cdc", "arn", "running", stats={"ElapsedTimeMillis": 24 * 3600 * 1000})
NO_INSERTS = TableStat("public", "lookup", "Table completed")


def rows(aurora, final, exact=True, lag=timedelta(minutes=1), task=QUIET, stat=NO_INSERTS):
    return checks.check_rows(RowCount(aurora, exact), final, NOW - lag, task, stat, SPEC, NOW)


def test_a_fresh_lookup_table_missing_40_percent_is_data_missing():
    result = rows(1_000, 600)
    assert result.status is Status.FAILING and "400 rows missing" in result.summary
    verdict, actions = decide((result,))
    assert verdict.section is Section.LAGGING and actions == (ActionKind.RESYNC,)


@pytest.mark.parametrize("aurora, allowed", [(100, 10), (1_000, 100), (10_000, 1_000), (10_000_000, 100_000)])
def test_the_tolerance_at_each_size_for_exact_counts(aurora, allowed):
    assert rows(aurora, aurora - allowed).status is Status.OK
    assert rows(aurora, aurora - allowed - 1).facts["missing_rows"]


def test_an_estimate_of_ten_million_rows_allows_ten_percent():
    assert rows(10_000_000, 9_000_000, exact=False).status is Status.OK
    assert rows(10_000_000, 8_999_999, exact=False).facts["missing_rows"]


def test_a_busy_lagging_small_table_stays_quiet():
    """5 inserts a second and the final table 10 minutes behind explain a gap of 6,000 rows."""
    stat = TableStat("public", "lookup", "Table completed", inserts=5 * 24 * 3600)
    assert rows(8_000, 3_000, lag=timedelta(minutes=10), stat=stat).status is Status.OK
