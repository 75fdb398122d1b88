"""The Snowflake gateway's SQL through the real snowflake-connector-python API, run by fakesnow."""
import json
import threading
import time
from datetime import datetime, timezone

import pytest
import sqlglot
from fakesnow.instance import FakeSnow

from collections import Counter

from bot.gateways import GatewayError, NotFound
from bot.gateways.snowflake import (
    COPY_HISTORY_SQL, PIPE_STATUS_SQL, Refused, SnowflakeGateway, column_types_many_sql, copy_histories_sql,
    newest_many_sql, parse_load_record, parse_pipe_status, pipe_statuses_sql,
)
from syncbot.sandbox.seams import counting_cursors


@pytest.fixture
def snow():
    fake = FakeSnow()
    cur = fake.connect(database="SYNC", schema="PUBLIC").cursor()
    cur.execute("CREATE SCHEMA STAGING")
    cur.execute("CREATE TABLE PUBLIC.ORDERS (ID NUMBER(19,0), STATUS VARCHAR(32), UPDATED_AT TIMESTAMP_NTZ)")
    cur.execute("INSERT INTO PUBLIC.ORDERS VALUES (1, 'new', '2026-11-26 01:00:00'), (2, 'paid', '2026-11-26 02:30:00')")
    return fake


def gateway(fake, pool=4, calls=None):
    """`calls`: where its statements are counted, at the cursor (syncbot.sandbox.seams)."""
    connect = lambda: fake.connect(database="SYNC", schema="PUBLIC")  # noqa: E731
    return SnowflakeGateway(connect if calls is None else counting_cursors(connect, calls), pool)


def test_columns_from_information_schema(snow):
    assert gateway(snow).columns("PUBLIC.ORDERS") == {"ID": "NUMBER", "STATUS": "TEXT", "UPDATED_AT": "TIMESTAMP_NTZ"}


def test_missing_table_is_not_found(snow):
    with pytest.raises(NotFound):
        gateway(snow).columns("PUBLIC.NOPE")


def test_newest_row_with_bound_identifiers(snow):
    found = gateway(snow).newest_many([("PUBLIC.ORDERS", "UPDATED_AT")])
    assert found == {("PUBLIC.ORDERS", "UPDATED_AT"): datetime(2026, 11, 26, 2, 30, tzinfo=timezone.utc)}


def test_newest_of_empty_table_is_none(snow):
    snow.connect(database="SYNC", schema="PUBLIC").cursor().execute("CREATE TABLE PUBLIC.EMPTY (UPDATED_AT TIMESTAMP_NTZ)")
    assert gateway(snow).newest_many([("PUBLIC.EMPTY", "UPDATED_AT")]) == {("PUBLIC.EMPTY", "UPDATED_AT"): None}


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


# Multi-table reads ---------------------------------------------------------------------------------

def test_columns_of_many_tables_in_one_statement(snow):
    cur = snow.connect(database="SYNC", schema="PUBLIC").cursor()
    cur.execute("CREATE TABLE STAGING.ORDERS_CDC (OP VARCHAR(1), ID NUMBER(19,0))")
    calls = Counter()
    gw = gateway(snow, calls=calls)
    found = gw.column_types_many(["PUBLIC.ORDERS", "STAGING.ORDERS_CDC", "PUBLIC.NOPE"])
    assert {n: c.data_type for n, c in found["PUBLIC.ORDERS"].items()} == gw.columns("PUBLIC.ORDERS")
    assert {n: c.data_type for n, c in found["STAGING.ORDERS_CDC"].items()} == {"OP": "TEXT", "ID": "NUMBER"}
    assert isinstance(found["PUBLIC.NOPE"], NotFound) and "PUBLIC.NOPE" in str(found["PUBLIC.NOPE"])
    assert calls["snowflake", "statement"] == 2  # the comparison's own columns() call included


def test_newest_of_many_tables_keeps_each_type_and_isolates_a_missing_table(snow):
    cur = snow.connect(database="SYNC", schema="PUBLIC").cursor()
    cur.execute("CREATE TABLE PUBLIC.CUSTOMERS (ID NUMBER(19,0), UPDATED_AT TIMESTAMP_TZ)")
    cur.execute("INSERT INTO PUBLIC.CUSTOMERS VALUES (1, '2026-11-26 03:00:00+02:00')")
    calls = Counter()
    gw = gateway(snow, calls=calls)
    found = gw.newest_many([("PUBLIC.ORDERS", "UPDATED_AT"), ("PUBLIC.GONE", "UPDATED_AT"),
                            ("PUBLIC.CUSTOMERS", "UPDATED_AT")])
    assert found[("PUBLIC.ORDERS", "UPDATED_AT")] == datetime(2026, 11, 26, 2, 30, tzinfo=timezone.utc)
    assert found[("PUBLIC.CUSTOMERS", "UPDATED_AT")] == datetime(2026, 11, 26, 1, 0, tzinfo=timezone.utc)
    assert isinstance(found[("PUBLIC.GONE", "UPDATED_AT")], NotFound)
    # The refused statement of three was split: [ORDERS] and [GONE, CUSTOMERS], then [GONE] and [CUSTOMERS].
    assert calls["snowflake", "statement"] == 1 + 4


class Recording:
    """A DB-API connection that records each statement and answers from `answer(sql, params)`."""

    def __init__(self, answer):
        self.seen, self._answer = [], answer

    def __call__(self):
        return self

    def cursor(self):
        return self

    def execute(self, sql, params):
        self.seen.append((sql, params))
        self._rows = self._answer(sql, params)

    def fetchall(self):
        return self._rows

    def close(self):
        pass


def test_pipe_statuses_bind_every_name_and_isolate_a_refused_pipe():
    from snowflake.connector.errors import ProgrammingError

    def answer(sql, params):
        if "STAGING.SECRET_PIPE" in params:
            raise ProgrammingError(msg="Insufficient privileges to operate on pipe 'SECRET_PIPE'", errno=3001,
                                   sqlstate="42501")
        return [tuple(json.dumps({"executionState": "PAUSED" if "PAUSED" in p else "RUNNING"}) for p in params)]

    conn = Recording(answer)
    pipes = [f"STAGING.T{i}_PIPE" for i in range(6)] + ["STAGING.SECRET_PIPE", "STAGING.PAUSED_PIPE"]
    found = SnowflakeGateway(conn).pipe_statuses(pipes)
    assert conn.seen[0] == (pipe_statuses_sql(8), tuple(pipes))
    assert "STAGING" not in conn.seen[0][0]  # names are bound, never spliced
    assert found["STAGING.T0_PIPE"].execution_state == "RUNNING"
    assert found["STAGING.PAUSED_PIPE"].execution_state == "PAUSED"
    refused = found["STAGING.SECRET_PIPE"]
    assert isinstance(refused, Refused) and "Insufficient privileges" in str(refused)
    assert len(found) == 8 and len(conn.seen) == 1 + 2 + 2 + 2  # 8 -> 4+4 -> 2+2 -> 1+1


def test_a_failure_of_the_whole_statement_is_not_split():
    from snowflake.connector.errors import ProgrammingError

    def answer(sql, params):
        raise ProgrammingError(msg="Statement reached its statement or warehouse timeout of 30 second(s) and was "
                                   "canceled.", errno=630, sqlstate="57014")

    conn = Recording(answer)
    with pytest.raises(GatewayError, match="timeout") as info:
        SnowflakeGateway(conn).pipe_statuses(["STAGING.A_PIPE", "STAGING.B_PIPE", "STAGING.C_PIPE"])
    assert not isinstance(info.value, (NotFound, Refused)) and len(conn.seen) == 1


def test_copy_histories_label_each_row_with_its_table():
    loaded = datetime(2026, 11, 26, 1, 0)

    def answer(sql, params):
        return [("STAGING.ORDERS_CDC", "dms/public/orders/a.csv", "Load failed", 0, "bad", loaded),
                ("STAGING.ORDERS_CDC", "dms/public/orders/b.csv", "Loaded", 12, None, loaded),
                ("STAGING.PAYMENTS_CDC", "dms/public/payments/c.csv", "Loaded", 3, None, loaded)]

    conn = Recording(answer)
    tables = ["STAGING.ORDERS_CDC", "STAGING.CUSTOMERS_CDC", "STAGING.PAYMENTS_CDC"]
    found = SnowflakeGateway(conn).copy_histories(tables, hours=4)
    assert conn.seen == [(copy_histories_sql(3), tuple(p for t in tables for p in (t, t, 4)))]
    assert [r.file_name for r in found["STAGING.ORDERS_CDC"]] == ["dms/public/orders/a.csv", "dms/public/orders/b.csv"]
    assert found["STAGING.ORDERS_CDC"][0].failed and found["STAGING.CUSTOMERS_CDC"] == []
    assert found["STAGING.PAYMENTS_CDC"][0].row_count == 3


@pytest.mark.parametrize("build", [pipe_statuses_sql, copy_histories_sql, newest_many_sql, column_types_many_sql])
def test_multi_table_sql_is_valid_snowflake_with_one_placeholder_per_value(build):
    sql = build(3)
    literal = sql % tuple(f"'V{i}'" for i in range(sql.count("%s")))
    assert sqlglot.parse_one(literal, read="snowflake") is not None
    assert build(1).count("%s") * 3 == sql.count("%s")


def test_reads_are_cancelled_by_the_connector_after_the_read_timeout_but_changes_are_not():
    seen = []

    class Cursor:
        def execute(self, sql, params=(), **kwargs):
            seen.append((sql.split()[0], kwargs))

        def fetchall(self):
            return [("{}",)]

        description = [("definition",)]

        def fetchone(self):
            return ("COPY INTO STAGING.T FROM @S",)

        def close(self):
            pass

    class Conn:
        def cursor(self):
            return Cursor()

    gw = SnowflakeGateway(Conn, read_timeout_s=7.5)
    gw.pipe_status("STAGING.ORDERS_PIPE")
    gw.definition("PIPE", "STAGING.ORDERS_PIPE")
    gw.truncate("STAGING.ORDERS_CDC")
    gw.load_files("COPY INTO STAGING.ORDERS_CDC FROM @STAGING.DMS/dms/", ["dms/public/orders/a.csv"])
    assert seen == [("SELECT", {"timeout": 8}), ("DESCRIBE", {"timeout": 8}), ("TRUNCATE", {}), ("COPY", {})]


def test_reads_with_a_timeout_run_on_the_real_connector(snow):
    gw = SnowflakeGateway(lambda: snow.connect(database="SYNC", schema="PUBLIC"), read_timeout_s=5)
    assert gw.newest_many([("PUBLIC.ORDERS", "UPDATED_AT")])[("PUBLIC.ORDERS", "UPDATED_AT")] == datetime(
        2026, 11, 26, 2, 30, tzinfo=timezone.utc)


def test_a_failed_login_is_a_gateway_error_naming_the_host_only():
    from snowflake.connector.errors import DatabaseError

    def connect():
        raise DatabaseError(msg="Failed to connect to DB: acme.snowflakecomputing.com:443. Incorrect username or "
                                "password was specified.", errno=250001, sqlstate="08001")

    with pytest.raises(GatewayError, match=r"^could not connect: Failed to connect to DB: acme") as err:
        SnowflakeGateway(connect).pipe_status("STAGING.ORDERS_PIPE")
    assert err.value.__cause__ is None and err.value.__suppress_context__
