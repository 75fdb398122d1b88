"""The gateway reads and changes behind the deeper checks: column types and row counts on fakesnow and
the machine's PostgreSQL; SHOW TASKS and TASK_HISTORY (which fakesnow lacks) at the connector seam,
their SQL checked by sqlglot; every column change checked before the first runs."""
from datetime import datetime, timezone

import psycopg
import pytest
import sqlglot
from fakesnow.instance import FakeSnow

from bot.gateways import GatewayError, NotFound
from bot.gateways import aurora as aurora_module
from bot.gateways.aurora import AuroraGateway, RowCount
from bot.gateways.snowflake import (
    FORCE_RESUME_SQL, SHOW_TASKS_SQL, SfColumn, SnowflakeGateway, column_name, column_types_many_sql,
    row_counts_sql, task_histories_sql,
)

HOSTILE = "X NUMBER; GRANT ROLE ACCOUNTADMIN TO USER MALLORY; --"
# SHOW TASKS' columns, as Snowflake's reference for SHOW TASKS lists them (output section).
SHOW_TASKS_COLUMNS = ("created_on", "name", "id", "database_name", "schema_name", "owner", "comment", "warehouse",
                      "schedule", "predecessors", "state", "definition", "condition", "allow_overlapping_execution",
                      "error_integration", "last_committed_on", "last_suspended_on", "owner_role_type", "config",
                      "budget", "task_relations", "last_suspended_reason")


@pytest.fixture
def snow():
    fake = FakeSnow()
    cur = fake.connect(database="SYNC", schema="PUBLIC").cursor()
    cur.execute("CREATE SCHEMA STAGING")
    cur.execute("CREATE TABLE PUBLIC.ORDERS (ID NUMBER(19,0), STATUS VARCHAR(64), TOTAL NUMBER(10,2), NOTE VARCHAR)")
    cur.execute("INSERT INTO PUBLIC.ORDERS VALUES (1, 'new', 1.5, 'x'), (2, 'paid', 2.5, 'y'), (3, 'paid', 1, 'z')")
    cur.execute("CREATE TABLE STAGING.ORDERS_CDC (OP VARCHAR(1), ID NUMBER(19,0))")
    return fake


def gateway(fake):
    return SnowflakeGateway(lambda: fake.connect(database="SYNC", schema="PUBLIC"))


class Recording:
    """A connector connection that records each statement and answers with canned rows."""

    def __init__(self, rows=(), description=()):
        self.seen, self._rows, self.description = [], list(rows), list(description)

    def __call__(self):
        return self

    def cursor(self):
        return self

    def execute(self, sql, params=(), **kwargs):
        self.seen.append((sql, tuple(params)))

    def fetchall(self):
        return self._rows

    def close(self):
        pass


def test_column_types_read_lengths_precision_and_scale(snow):
    found = gateway(snow).column_types_many(["PUBLIC.ORDERS", "PUBLIC.NOPE"])
    assert found["PUBLIC.ORDERS"] == {
        "ID": SfColumn("ID", "NUMBER", None, 19, 0), "STATUS": SfColumn("STATUS", "TEXT", 64),
        "TOTAL": SfColumn("TOTAL", "NUMBER", None, 10, 2), "NOTE": SfColumn("NOTE", "TEXT", 16_777_216)}
    assert isinstance(found["PUBLIC.NOPE"], NotFound)
    assert found["PUBLIC.ORDERS"]["STATUS"].shown == "VARCHAR(64)"


def test_final_table_row_counts(snow):
    assert gateway(snow).row_counts(["PUBLIC.ORDERS", "STAGING.ORDERS_CDC"]) == {"PUBLIC.ORDERS": 3,
                                                                                  "STAGING.ORDERS_CDC": 0}


def test_column_changes_run_in_fakesnow_with_the_exact_statements(snow):
    gw = gateway(snow)
    ran = gw.change_columns([("PUBLIC.ORDERS", "STATUS", "type", "VARCHAR(255)"),
                             ("PUBLIC.ORDERS", "TOTAL", "type", "NUMBER(14,2)"),
                             ("PUBLIC.ORDERS", "order", "add", "NUMBER(10,0)")])
    assert ran == ["ALTER TABLE PUBLIC.ORDERS ALTER COLUMN STATUS SET DATA TYPE VARCHAR(255)",
                   "ALTER TABLE PUBLIC.ORDERS ALTER COLUMN TOTAL SET DATA TYPE NUMBER(14,2)",
                   'ALTER TABLE PUBLIC.ORDERS ADD COLUMN "ORDER" NUMBER(10,0)']
    types = gw.column_types("PUBLIC.ORDERS")
    assert (types["STATUS"].char_length, types["TOTAL"].precision, "ORDER" in types) == (255, 14, True)


@pytest.mark.parametrize("change", [
    ("PUBLIC.ORDERS", HOSTILE, "add", "NUMBER(10,0)"),
    ("PUBLIC.ORDERS", "NOTE", "type", "VARCHAR(10); DROP TABLE PUBLIC.ORDERS"),
    ("PUBLIC.ORDERS; DROP TABLE X", "NOTE", "type", "VARCHAR(10)"),
    ("PUBLIC.ORDERS", "NOTE", "drop", "VARCHAR(10)"),
])
def test_a_refused_change_stops_the_whole_plan_before_any_statement_runs(change):
    conn = Recording()
    good = ("PUBLIC.ORDERS", "STATUS", "type", "VARCHAR(255)")
    with pytest.raises(GatewayError, match="refusing"):
        SnowflakeGateway(conn).change_columns([good, change, good])
    assert conn.seen == []  # not even the valid first ALTER ran


def test_reserved_words_are_quoted_plain_names_upper_cased():
    assert (column_name("order"), column_name("status"), column_name("Select")) == ('"ORDER"', "STATUS", '"SELECT"')
    with pytest.raises(GatewayError):
        column_name('a"b')


@pytest.mark.parametrize("sql", [
    task_histories_sql(3) % tuple(f"'V{i}'" for i in range(15)),
    column_types_many_sql(2) % tuple(f"'V{i}'" for i in range(4)),
    row_counts_sql(2) % ("'PUBLIC.A'", "'PUBLIC.B'"),
    FORCE_RESUME_SQL % ("'STAGING.ORDERS_PIPE'",),
    SHOW_TASKS_SQL,
])
def test_new_statements_are_valid_snowflake(sql):
    assert sqlglot.parse_one(sql, read="snowflake") is not None


def test_task_histories_bind_name_and_schema_and_label_rows():
    scheduled = datetime(2026, 11, 26, 2, 55)
    rows = [("STAGING.ORDERS_MERGE", "FAILED", scheduled, scheduled, 100038, "Numeric value 'abc' is not recognized"),
            ("STAGING.ORDERS_MERGE", "SUCCEEDED", scheduled, scheduled, None, None)]
    conn = Recording(rows)
    gw = SnowflakeGateway(conn)
    gw._roots.update({"STAGING.ORDERS_MERGE": "01a", "STAGING.PAYMENTS_MERGE": "01b"})  # as SHOW TASKS left them
    found = gw.task_histories(["STAGING.ORDERS_MERGE", "STAGING.PAYMENTS_MERGE"])
    assert conn.seen == [(task_histories_sql(2), ("STAGING.ORDERS_MERGE", 24, "ORDERS_MERGE", "01a", "STAGING",
                                                  "STAGING.PAYMENTS_MERGE", 24, "PAYMENTS_MERGE", "01b", "STAGING"))]
    first = found["STAGING.ORDERS_MERGE"][0]
    assert (first.state, first.error_code, first.scheduled_at.tzinfo) == ("FAILED", "100038", timezone.utc)
    assert found["STAGING.PAYMENTS_MERGE"] == []


def test_task_states_from_one_show_tasks_per_database():
    def row(schema, name, state, schedule):
        values = dict.fromkeys(SHOW_TASKS_COLUMNS, None)
        values.update(name=name, schema_name=schema, database_name="SYNC", state=state, schedule=schedule,
                      predecessors="[]")
        return tuple(values[c] for c in SHOW_TASKS_COLUMNS)

    conn = Recording([row("STAGING", "ORDERS_MERGE", "suspended", "1 MINUTE"),
                      row("OTHER", "ORDERS_MERGE", "started", "1 MINUTE")],
                     description=[(c,) for c in SHOW_TASKS_COLUMNS])
    found = SnowflakeGateway(conn).task_states(["STAGING.ORDERS_MERGE", "STAGING.GONE_MERGE"])
    assert [sql for sql, _ in conn.seen] == ["SHOW TASKS IN DATABASE"]
    assert (found["STAGING.ORDERS_MERGE"].state, found["STAGING.ORDERS_MERGE"].schedule) == ("suspended", "1 MINUTE")
    assert found["STAGING.GONE_MERGE"] is None


def test_force_resume_binds_the_checked_pipe_name():
    conn = Recording()
    SnowflakeGateway(conn).force_resume_pipe("staging.orders_pipe")
    assert conn.seen == [(FORCE_RESUME_SQL, ("STAGING.ORDERS_PIPE",))]
    with pytest.raises(GatewayError):
        SnowflakeGateway(conn).force_resume_pipe("STAGING.X'); DROP TABLE Y; --")


# -- Aurora row counts on the machine's PostgreSQL ----------------------------------------------------

@pytest.fixture
def counted_pg(pg_dsn):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS rows_test")
        conn.execute("DROP TABLE IF EXISTS rows_test.small, rows_test.big")
        conn.execute("CREATE TABLE rows_test.small (id int)")
        conn.execute("INSERT INTO rows_test.small SELECT generate_series(1, 1234)")
        conn.execute("CREATE TABLE rows_test.big (id int)")
        conn.execute("INSERT INTO rows_test.big SELECT generate_series(1, 5000)")
        conn.execute("ANALYZE rows_test.big")
    return AuroraGateway(pg_dsn)


def test_small_tables_are_counted_exactly(counted_pg):
    found = counted_pg.row_counts([("rows_test", "small"), ("rows_test", "nope")])
    assert found[("rows_test", "small")] == RowCount(1234, True)
    assert isinstance(found[("rows_test", "nope")], NotFound)


def test_big_tables_are_estimated_from_the_planner(counted_pg, monkeypatch):
    monkeypatch.setattr(aurora_module, "EXACT_BELOW_BYTES", 0)
    assert counted_pg.row_counts([("rows_test", "big")])[("rows_test", "big")] == RowCount(5000, False)
