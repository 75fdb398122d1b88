"""The Aurora gateway against the machine's real PostgreSQL."""
from collections import Counter

import psycopg
import pytest

from bot.gateways import GatewayError, NotFound
from bot.gateways.aurora import AuroraGateway, PgColumn
from syncbot.sandbox.seams import counting_connect

@pytest.fixture
def logins():
    """The gateway's logins, counted at its connect: it logs in once per read."""
    return Counter()


@pytest.fixture
def aurora(pg_dsn, logins):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS sales")
        conn.execute("DROP TABLE IF EXISTS sales.invoices")
        conn.execute("CREATE TABLE sales.invoices (id bigint, code varchar(12), amount numeric(10,3), "
                     "paid boolean, meta jsonb, at timestamptz)")
    return AuroraGateway(pg_dsn, connect=counting_connect(psycopg.connect, logins))


def test_columns_in_order_with_sizes(aurora):
    assert aurora.columns("sales", "invoices") == [
        PgColumn("id", "bigint", None, 64, 0),
        PgColumn("code", "character varying", 12, None, None),
        PgColumn("amount", "numeric", None, 10, 3),
        PgColumn("paid", "boolean", None, None, None),
        PgColumn("meta", "jsonb", None, None, None),
        PgColumn("at", "timestamp with time zone", None, None, None),
    ]


def test_missing_table_is_not_found(aurora):
    with pytest.raises(NotFound, match="sales.nope"):
        aurora.columns("sales", "nope")


def test_replication_slot_query_runs(aurora):
    # The test server has no logical slot (wal_level=replica); the query itself must be valid SQL.
    assert aurora.replication_slots() == []


def test_unreachable_database_is_a_gateway_error_of_one_trimmed_line():
    dsn = "postgresql://syncbot:s3cret-pw@127.0.0.1:1/aurora"
    with pytest.raises(psycopg.OperationalError) as raw:
        psycopg.connect(dsn, connect_timeout=1)
    lines = str(raw.value).strip().splitlines()
    assert len(lines) > 1  # libpq adds a hint line (and may echo more): the gateway keeps only the first
    with pytest.raises(GatewayError) as info:
        AuroraGateway(dsn, connect_timeout=1).columns("public", "orders")
    assert str(info.value) == lines[0][:300] and "s3cret-pw" not in str(info.value)


def test_columns_of_many_tables_in_one_query(aurora, pg_dsn, logins):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.refunds")
        conn.execute("CREATE TABLE public.refunds (id bigint, reason text)")
    found = aurora.columns_many([("sales", "invoices"), ("public", "refunds"), ("sales", "nope")])
    assert found[("sales", "invoices")] == aurora.columns("sales", "invoices")
    assert found[("public", "refunds")] == [PgColumn("id", "bigint", None, 64, 0), PgColumn("reason", "text")]
    assert isinstance(found[("sales", "nope")], NotFound)
    assert logins["aurora", "login"] == 2  # one for the three tables, one for the comparison
