"""The Snowflake gateway's connection handling through the real snowflake-connector-python, logging in
over HTTP to fakesnow's server: a refused statement keeps its connection (no new login), a broken one
is dropped, a refused batched read costs its re-split and nothing more, and a login makes no platform
detection calls (sts:GetCallerIdentity, cloud metadata)."""
import uuid
from collections import Counter
from datetime import datetime, timezone

import pytest
import snowflake.connector
from snowflake.connector import platform_detection

import fakesnow.server as fakesnow_server
from bot.gateways import NotFound
from bot.gateways.snowflake import Refused, SnowflakeGateway, connection_broken
from bot.settings import Settings
from syncbot.sandbox.seams import counting_cursors
from syncbot.sandbox.snowflake_server import serving


@pytest.fixture(scope="module")
def server():
    with serving() as kwargs:
        yield kwargs


@pytest.fixture
def logins(server):
    """A gateway on a database of its own, the logins it made, and its statements counted."""
    database = f"T{uuid.uuid4().hex[:8]}"
    made = []

    def connect():
        conn = snowflake.connector.connect(**server, database=database, schema="PUBLIC")
        made.append(conn)
        return conn

    calls = Counter()  # its statements, counted at the cursor
    gw = SnowflakeGateway(counting_cursors(connect, calls), pool_size=2)
    gw.execute("CREATE TABLE PUBLIC.ORDERS (ID NUMBER(19,0), UPDATED_AT TIMESTAMP_NTZ)")
    gw.execute("INSERT INTO PUBLIC.ORDERS VALUES (1, '2026-11-26 02:30:00')")
    for i in range(7):
        gw.execute(f"CREATE TABLE PUBLIC.T{i} (UPDATED_AT TIMESTAMP_NTZ)")
        gw.execute(f"INSERT INTO PUBLIC.T{i} VALUES ('2026-11-26 0{i}:00:00')")
    return gw, made, calls


def test_a_refused_statement_keeps_its_connection(logins):
    gw, made, _ = logins
    with pytest.raises(NotFound, match="does not exist"):
        gw.query("SELECT MAX(UPDATED_AT) FROM PUBLIC.NOPE")
    with pytest.raises(Refused):
        gw.query("SELEC 1")
    assert gw.query("SELECT COUNT(*) FROM PUBLIC.ORDERS") == [(1,)]
    assert len(made) == 1 and not made[0].is_closed()


def test_a_broken_connection_is_dropped_and_the_next_read_logs_in_again(logins):
    gw, made, _ = logins
    fakesnow_server.sessions.clear()  # the server forgot every session: an expired login
    with pytest.raises(Exception, match="401"):
        gw.query("SELECT COUNT(*) FROM PUBLIC.ORDERS")
    assert gw.query("SELECT COUNT(*) FROM PUBLIC.ORDERS") == [(1,)]  # not on the dead session again
    assert len(made) == 2


def test_a_refused_batch_costs_its_re_split_and_no_login(logins):
    gw, made, calls = logins
    pairs = [(f"PUBLIC.T{i}", "UPDATED_AT") for i in range(7)]
    pairs.insert(5, ("PUBLIC.GONE", "UPDATED_AT"))
    before = calls["snowflake", "statement"]
    found = gw.newest_many(pairs)
    assert isinstance(found[("PUBLIC.GONE", "UPDATED_AT")], NotFound)
    assert found[("PUBLIC.T6", "UPDATED_AT")] == datetime(2026, 11, 26, 6, tzinfo=timezone.utc)
    assert sum(not isinstance(v, NotFound) for v in found.values()) == 7
    assert calls["snowflake", "statement"] - before == 1 + 2 + 2 + 2  # 8 -> 4+4 -> 2+2 -> 1+1: the refusal pinned in 3 halvings
    assert len(made) == 1  # every statement of the re-split on the one warm connection


@pytest.mark.parametrize("error, broken", [
    (snowflake.connector.errors.ProgrammingError(msg="does not exist", errno=2003, sqlstate="42S02"), False),
    (snowflake.connector.errors.ProgrammingError(msg="SQL execution canceled", errno=604, sqlstate="57014"), False),
    (snowflake.connector.errors.OperationalError(msg="connection reset", errno=251011), True),
    (snowflake.connector.errors.DatabaseError(msg="Connection is closed", errno=250002), True),
    (snowflake.connector.errors.ProgrammingError(msg="session expired", errno=390112, sqlstate="08001"), True),
    (ConnectionResetError(), True),
])
def test_only_connection_level_errors_break_a_connection(error, broken):
    assert connection_broken(error) is broken


def test_a_login_with_the_bots_settings_makes_no_platform_detection_calls(server, monkeypatch):
    probed = []
    for probe in ("has_aws_identity", "is_ec2_instance", "is_azure_vm", "is_gce_vm"):
        monkeypatch.setattr(platform_detection, probe, lambda *a, probe=probe, **k: probed.append(probe))
    settings = Settings(snowflake_account=server["account"], snowflake_user=server["user"],
                        snowflake_password=server["password"], snowflake_host=server["host"],
                        snowflake_port=server["port"], snowflake_protocol="http", _env_file=None)
    args = settings.snowflake_connect_args()
    conn = snowflake.connector.connect(**args, session_parameters=server["session_parameters"])
    conn.close()
    assert probed == []
