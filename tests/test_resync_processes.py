"""The re-sync as it runs in production, with its faults: signed HTTP requests to the web app, real
`syncbot worker` processes killed with SIGKILL in TRUNCATE and again during the reload, each replaced
at once by a new one. Every backend is reached through its real protocol from the worker processes:
moto's server for DMS (with the sandbox's DescribeTableStatistics/ReloadTables), fakesnow's server
through snowflake-connector-python, the machine's PostgreSQL and Redis, and a local Slack Web API.

fakesnow lacks what Snowflake does server-side, played here where its server runs statements: session
parameters (STATEMENT_TIMEOUT_IN_SECONDS cancels a statement that runs longer, even when its client died),
a TRUNCATE that waits on a lock (made slow on demand), and the pipe: DESCRIBE PIPE, its COPY_HISTORY
(LOAD00000001.csv loaded by the pipe three days ago, so Snowpipe skips the rewritten file), answered by
the benchmark's telemetry layer in front of the server, and the re-sync's COPY of that file, whose rows
then reach the final table at once (the merge)."""
from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time

import boto3
import psycopg
import pytest
import snowflake.connector
from moto.server import ThreadedMotoServer
from snowflake.connector.errors import ProgrammingError

from bench.snowpipe import HISTORY_TABLE, SnowpipeTelemetry, create_tables
from bot.remediation import audit
from bot.settings import Settings
from handlers.app import web_client
from syncbot.sandbox.slack import signed_headers, slash_command_body
from syncbot.sandbox import moto_dms
from syncbot.sandbox.snowflake_server import serving
from syncbot.server import wsgi_app
from syncbot.wiring import web
from test_server import Quiet, ThreadingServer, click_over_http, post, wait_for

CATALOG = """\
[defaults]
dms_task = "aurora-snowflake-cdc"
dms_instance = "dms-prod"
s3_bucket = "acme-cdc"

[[tables]]
name = "orders"
source = "public.orders"

[access]
approvers = ["U0ALICE01", "U0BOB0002"]
"""
LEASE_S = 3
ROWS = 3
PIPE_COPY = "COPY INTO STAGING.ORDERS_CDC FROM @SYNC.STAGING.CDC_STAGE/public/orders/ FILE_FORMAT = (TYPE = CSV)"
FULL_LOAD_KEY = "public/orders/LOAD00000001.csv"


class SnowflakeServerSide:
    """What Snowflake's server does and fakesnow's does not: statement timeouts and slow TRUNCATEs."""

    def __init__(self):
        self.slow_truncate_s = 0.0
        self.arrived: list[str] = []  # TRUNCATEs as they reach the server, before they run
        self.truncates: list[tuple[float, str, str]] = []  # (when it landed, table, outcome)
        self.copies: list[str] = []  # the re-sync's COPY INTO … FILES statements, as they arrived
        self._timeouts: dict[int, int] = {}

    def install(self, monkeypatch):
        from fakesnow.cursor import FakeSnowflakeCursor

        original = FakeSnowflakeCursor.execute
        side = self

        def execute(cursor, command, *args, **kwargs):
            text = command.strip().upper()
            if text.startswith("ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS"):
                side._timeouts[id(cursor._conn)] = int(text.rsplit("=", 1)[1])
                return original(cursor, "SELECT 'Statement executed successfully.'")
            if text.startswith("ALTER SESSION UNSET STATEMENT_TIMEOUT_IN_SECONDS"):
                side._timeouts.pop(id(cursor._conn), None)
                return original(cursor, "SELECT 'Statement executed successfully.'")
            if text.startswith("COPY INTO STAGING.ORDERS_CDC"):
                side.copies.append(command)
                original(cursor, "INSERT INTO SYNC.PUBLIC.ORDERS (ID, UPDATED_AT) VALUES "
                         + ", ".join(f"({i}, CURRENT_TIMESTAMP())" for i in range(1, ROWS + 1)))
                return original(cursor, "SELECT 'LOAD00000001.csv' AS \"file\", 'LOADED' AS \"status\"")
            if text.startswith("TRUNCATE"):
                side.arrived.append(text.split()[-1])
                limit = side._timeouts.get(id(cursor._conn))
                if side.slow_truncate_s and limit is not None and side.slow_truncate_s > limit:
                    time.sleep(limit)
                    side.truncates.append((time.time(), text.split()[-1], "cancelled by its timeout"))
                    raise ProgrammingError(msg=f"Statement reached its statement or warehouse timeout of {limit} "
                                               "second(s) and was canceled.", errno=630, sqlstate="57014")
                time.sleep(side.slow_truncate_s)
                result = original(cursor, command, *args, **kwargs)
                side.truncates.append((time.time(), text.split()[-1], "done"))
                return result
            return original(cursor, command, *args, **kwargs)

        monkeypatch.setattr(FakeSnowflakeCursor, "execute", execute)


@pytest.fixture
def stack(pg_dsn, redis, slack, tmp_path, monkeypatch):
    from moto.dms.models import dms_backends

    # moto's DMS backend is per process: a stack seeded earlier in this run (another test file's) would
    # make this one's seeding fail with ResourceAlreadyExistsFault, whatever order the files run in.
    dms_backends.reset()
    moto_dms.install()
    monkeypatch.setattr(moto_dms, "RELOAD_POLLS", 12)  # the reload takes a few seconds of polls
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    aws_url = "http://127.0.0.1:%d" % moto.get_host_and_port()[1]
    side = SnowflakeServerSide()
    side.install(monkeypatch)
    # DESCRIBE PIPE and COPY_HISTORY, which fakesnow's server refuses to parse, are answered by the layer the
    # benchmark puts in front of it; SYSTEM$PIPE_STATUS is left as sent (refused: the re-sync goes by rows).
    layer = lambda app: SnowpipeTelemetry(app, {}, {"STAGING.ORDERS_CDC"}, {"STAGING.ORDERS_PIPE": PIPE_COPY})  # noqa: E731
    with serving(layer) as sf:  # fakesnow.server() starts a server only once per process
        env = {
            "AWS_ENDPOINT_URL": aws_url, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
            "SNOWFLAKE_ACCOUNT": "syncbot", "SNOWFLAKE_USER": sf["user"], "SNOWFLAKE_PASSWORD": sf["password"],
            "SNOWFLAKE_HOST": sf["host"], "SNOWFLAKE_PORT": str(sf["port"]), "SNOWFLAKE_PROTOCOL": "http",
            "SNOWFLAKE_DATABASE": "SYNC", "SNOWFLAKE_SCHEMA": "PUBLIC", "REDIS_URL": redis.connection_pool.connection_kwargs and
            "redis://127.0.0.1:%d/%d" % (redis.connection_pool.connection_kwargs["port"],
                                         redis.connection_pool.connection_kwargs["db"]),
            "AURORA_DATABASE_URL": pg_dsn, "SLACK_BOT_TOKEN": "xoxb-test", "SLACK_API_URL": slack.api_url,
            "SYNCBOT_CATALOG": str(tmp_path / "syncbot.toml"), "SYNCBOT_JOB_LEASE": str(LEASE_S),
            "SYNCBOT_JOB_POLL": "0.5", "LOG_LEVEL": "INFO", "SLACK_SIGNING_SECRET": secrets.token_hex(16),
        }
        (tmp_path / "syncbot.toml").write_text(CATALOG)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        task_arn = _seed(aws_url, sf, pg_dsn)
        hook = _reload_plays_dms_and_snowpipe(task_arn, aws_url)
        moto_dms.reload_hooks.append(hook)
        try:
            yield {"env": {**os.environ, **env}, "task_arn": task_arn, "side": side, "tmp": tmp_path}
        finally:
            moto_dms.reload_hooks.remove(hook)
            moto.stop()


def _seed(aws_url, sf, pg_dsn) -> str:
    dms = boto3.client("dms", endpoint_url=aws_url, region_name="us-east-1", aws_access_key_id="testing",
                       aws_secret_access_key="testing")
    instance = dms.create_replication_instance(ReplicationInstanceIdentifier="dms-prod",
                                               ReplicationInstanceClass="dms.t3.medium")
    endpoints = [dms.create_endpoint(EndpointIdentifier=n, EndpointType=k, EngineName=e)["Endpoint"]["EndpointArn"]
                 for n, k, e in (("aurora", "source", "aurora-postgresql"), ("s3", "target", "s3"))]
    arn = dms.create_replication_task(
        ReplicationTaskIdentifier="aurora-snowflake-cdc", SourceEndpointArn=endpoints[0],
        TargetEndpointArn=endpoints[1], MigrationType="full-load-and-cdc", TableMappings=json.dumps({"rules": []}),
        ReplicationInstanceArn=instance["ReplicationInstance"]["ReplicationInstanceArn"])["ReplicationTask"][
        "ReplicationTaskArn"]
    dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
    task = _task(arn)
    task.status = "running"
    task.table_statistics = [{"SchemaName": "public", "TableName": "orders", "TableState": "Table completed",
                              "FullLoadRows": ROWS, "FullLoadStartTime": "2026-11-01T00:00:00+00:00"}]
    s3 = boto3.client("s3", endpoint_url=aws_url, region_name="us-east-1", aws_access_key_id="testing",
                      aws_secret_access_key="testing")
    s3.create_bucket(Bucket="acme-cdc")
    s3.put_object(Bucket="acme-cdc", Key=FULL_LOAD_KEY, Body=b"the first full load")
    conn = snowflake.connector.connect(**sf)
    for sql in ("CREATE DATABASE IF NOT EXISTS SYNC", "CREATE SCHEMA IF NOT EXISTS SYNC.STAGING",
                "CREATE SCHEMA IF NOT EXISTS SYNC.PUBLIC",
                "CREATE OR REPLACE TABLE SYNC.PUBLIC.ORDERS (ID NUMBER, UPDATED_AT TIMESTAMP_NTZ)",
                "CREATE OR REPLACE TABLE SYNC.STAGING.ORDERS_CDC (OP VARCHAR(1), ID NUMBER, UPDATED_AT TIMESTAMP_NTZ)",
                "INSERT INTO SYNC.PUBLIC.ORDERS VALUES (1, '2026-11-28 00:00:00')",  # corrupted: rows missing
                "INSERT INTO SYNC.STAGING.ORDERS_CDC VALUES ('I', 1, '2026-11-28 00:00:00')"):
        conn.cursor().execute(sql)
    conn.close()
    import fakesnow.server

    cur = fakesnow.server.shared_fs.connect(database="SYNC", schema="PUBLIC").cursor()
    create_tables(cur)  # the pipe loaded the first full load's file three days ago
    cur.execute(f"INSERT INTO {HISTORY_TABLE} SELECT 'STAGING.ORDERS_CDC', '{FULL_LOAD_KEY}', 'Loaded', {ROWS}, NULL, "
                "DATEADD(day, -3, CURRENT_TIMESTAMP()), 'STAGING', 'ORDERS_PIPE'")
    cur.close()
    with psycopg.connect(pg_dsn, autocommit=True) as pg:
        pg.execute("DROP TABLE IF EXISTS public.orders")
        pg.execute("CREATE TABLE public.orders (id bigint primary key, updated_at timestamptz)")
        pg.execute(f"INSERT INTO public.orders SELECT g, now() FROM generate_series(1, {ROWS}) g")
    return arn


def _task(arn):
    from moto.dms.models import dms_backends

    return dms_backends["123456789012"]["us-east-1"].replication_tasks[arn]


def _reload_plays_dms_and_snowpipe(task_arn, aws_url):
    """When the sandbox DMS finishes a reload, it has rewritten LOAD00000001.csv under its old name: Snowpipe
    skips it (its pipe loaded that name before), so its rows arrive only by the re-sync's COPY, which the
    server side above plays at once. Nothing here waits: the re-sync's steps stay as fast as before."""
    from moto.s3.models import s3_backends

    def hook(task, stat):
        if task.arn != task_arn:
            return
        s3_backends["123456789012"]["aws"].put_object("acme-cdc", FULL_LOAD_KEY, b"the reloaded rows")
    return hook


def start_worker(stack, name):
    log = open(stack["tmp"] / f"{name}.log", "w")
    return subprocess.Popen([sys.executable, "-m", "syncbot.cli", "worker"], env=stack["env"], stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def kill(proc):
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def steps(redis):
    return [e.detail for e in reversed(audit.read(redis, "orders")) if e.event == "step"]


def test_resync_survives_sigkill_in_truncate_and_during_the_reload(stack, redis, slack):
    # The web process exactly as `syncbot serve` builds it.
    wiring = web(Settings(), web_client("xoxb-test", slack.api_url))
    bot, secret = wiring.bot, stack["env"]["SLACK_SIGNING_SECRET"]
    from wsgiref.simple_server import make_server

    server = make_server("127.0.0.1", 0, wsgi_app(wiring.app, bot), server_class=ThreadingServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    workers = []
    side, task = stack["side"], _task(stack["task_arn"])
    try:
        # Asked for by command (no check says the table is corrupted), approved by a second person.
        body = slash_command_body("resync orders rows lost overnight", "U0ALICE01", "C0INCIDNT", slack.response_url())
        assert post(base + "/slack/events", body, signed_headers(body, secret))[0] == 200
        assert wait_for(lambda: slack.of("chat.postMessage"), 20)
        request = slack.of("chat.postMessage")[0]
        approve = next(e for b in request.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["text"]["text"] == "Approve")
        side.slow_truncate_s = 30  # TRUNCATE waits on a lock; its statement timeout cancels it first
        click_over_http(base, secret, slack, approve, "U0BOB0002", request.ts)

        workers.append(start_worker(stack, "first"))
        assert wait_for(lambda: side.arrived, 60)
        assert "TRUNCATE TABLE STAGING.ORDERS_CDC: started" in steps(redis)
        kill(workers[0])  # inside TRUNCATE: the statement is running on the server
        killed_at = time.monotonic()
        side.slow_truncate_s = 0
        workers.append(start_worker(stack, "second"))  # a deploy's replacement, at once

        assert wait_for(lambda: len(task.reloads) == 1, 120)
        assert time.monotonic() - killed_at < 120
        kill(workers[1])  # during the reload: ReloadTables reached DMS, its checkpoint may not have
        reload_at = time.time()
        killed_at = time.monotonic()
        workers.append(start_worker(stack, "third"))

        state = lambda: wiring.approvals.get(approve["value"]).state.value  # noqa: E731
        assert wait_for(lambda: state() in ("succeeded", "failed"), 120), steps(redis)
        assert time.monotonic() - killed_at < 120
        request_now = wiring.approvals.get(approve["value"])
        assert request_now.state.value == "succeeded", request_now.outcome
        assert len(task.reloads) == 1  # never a second ReloadTables
        # The killed worker's TRUNCATE was cancelled by its statement timeout, inside its lease.
        assert [t for _, t, outcome in side.truncates if outcome != "done"][:1] == ["STAGING.ORDERS_CDC"]
        landed = [(at, table) for at, table, outcome in side.truncates if outcome == "done"]
        assert all(at < reload_at for at, _ in landed)  # no TRUNCATE after the reload started
        for table in ("STAGING.ORDERS_CDC", "PUBLIC.ORDERS"):
            assert 1 <= sum(1 for _, t in landed if t == table) <= 2
        events = [e.event for e in reversed(audit.read(redis, "orders"))]
        assert events.count("resumed") == 2 and events[-1] == "succeeded"
        assert f"rows now: Aurora {ROWS} rows, PUBLIC.ORDERS {ROWS}" in request_now.outcome
        # The rewritten file Snowpipe skips came in by the re-sync's own COPY, with its name bound.
        assert side.copies and all("FILES = ('LOAD00000001.csv')" in c for c in side.copies)
        assert "COPY INTO STAGING.ORDERS_CDC: 1 rewritten full-load files Snowpipe skips" in request_now.outcome
        # The worker redraws the message right after recording the end: wait for it rather than race it.
        assert wait_for(lambda: slack.messages[request.ts].params["text"] == "Re-sync table orders: done", 20), \
            slack.messages[request.ts].params["text"]
    finally:
        for proc in workers:
            if proc.poll() is None:
                kill(proc)
        server.shutdown()
        server.server_close()
