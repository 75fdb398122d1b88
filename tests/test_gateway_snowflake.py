"""The Snowflake gateway's SQL through the real snowflake-connector-python API, run by fakesnow."""
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from fakesnow.instance import FakeSnow

from bot.gateways import NotFound
from bot.gateways.snowflake import (
    COPY_HISTORY_SQL, PIPE_STATUS_SQL, SnowflakeGateway, parse_load_record, parse_pipe_status,
)


@pytest.fixture
def snow():
    fake = FakeSnow()
    cur = fake.connect(database="SYNC", schema="PUBLIC").cursor()
    cur.execute("CREATE SCHEMA STAGING")
    cur.execute("CREATE TABLE PUBLIC.ORDERS (ID NUMBER(19,0), STATUS VARCHAR(32), UPDATED_AT TIMESTAMP_NTZ)")
    cur.execute("INSERT INTO PUBLIC.ORDERS VALUES (1, 'new', '2026-11-26 01:00:00'), (2, 'paid', '2026-11-26 02:30:00')")
    return fake


def gateway(fake, pool=4):
    return SnowflakeGateway(lambda: fake.connect(database="SYNC", schema="PUBLIC"), pool)


def test_columns_from_information_schema(snow):
    assert gateway(snow).columns("PUBLIC.ORDERS") == {"ID": "NUMBER", "STATUS": "TEXT", "UPDATED_AT": "TIMESTAMP_NTZ"}


def test_missing_table_is_not_found(snow):
    with pytest.raises(NotFound):
        gateway(snow).columns("PUBLIC.NOPE")


def test_newest_row_with_bound_identifiers(snow):
    assert gateway(snow).newest("PUBLIC.ORDERS", "UPDATED_AT") == datetime(2026, 11, 26, 2, 30, tzinfo=timezone.utc)


def test_newest_of_empty_table_is_none(snow):
    snow.connect(database="SYNC", schema="PUBLIC").cursor().execute("CREATE TABLE PUBLIC.EMPTY (UPDATED_AT TIMESTAMP_NTZ)")
    assert gateway(snow).newest("PUBLIC.EMPTY", "UPDATED_AT") is None


def test_snowpipe_sql_binds_names_and_never_interpolates():
    seen = []

    class Cursor:
        def execute(self, sql, params):
            seen.append((sql, params))

        def fetchall(self):
            return [('{"executionState":"RUNNING","pendingFileCount":0}',)] if "PIPE_STATUS" in seen[-1][0] else []

        def close(self):
            pass

    class Conn:
        def cursor(self):
            return Cursor()

    gw = SnowflakeGateway(Conn)
    gw.pipe_status("STAGING.ORDERS_PIPE")
    gw.copy_history("STAGING.ORDERS_CDC")
    assert seen == [(PIPE_STATUS_SQL, ("STAGING.ORDERS_PIPE",)), (COPY_HISTORY_SQL, ("STAGING.ORDERS_CDC", 4))]
    assert "TABLE_NAME=>%s" in COPY_HISTORY_SQL and "DATEADD(hours, -%s, CURRENT_TIMESTAMP())" in COPY_HISTORY_SQL


def test_pipe_status_json_is_parsed():
    status = parse_pipe_status('{"executionState":"PAUSED","pendingFileCount":37,'
                               '"lastIngestedTimestamp":"2026-11-26T01:02:03.456Z","error":"boom"}')
    assert (status.execution_state, status.pending_file_count, status.error) == ("PAUSED", 37, "boom")
    assert status.last_ingested_at == datetime(2026, 11, 26, 1, 2, 3, 456000, tzinfo=timezone.utc)


def test_load_record_is_parsed():
    record = parse_load_record(("dms/a.csv", "LOAD FAILED", None, "bad", datetime(2026, 11, 26, 1, 0)))
    assert record.failed and record.row_count == 0 and record.last_load_time.tzinfo is not None


def test_pool_bounds_concurrent_connections():
    live, peak, lock = [0], [0], threading.Lock()

    class Cursor:
        def execute(self, sql, params):
            with lock:
                live[0] += 1
                peak[0] = max(peak[0], live[0])
            time.sleep(0.02)
            with lock:
                live[0] -= 1

        def fetchall(self):
            return [(1,)]

        def close(self):
            pass

    class Conn:
        def cursor(self):
            return Cursor()

    gw = SnowflakeGateway(Conn, pool_size=3)
    threads = [threading.Thread(target=gw.query, args=("SELECT 1",)) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert peak[0] == 3
