"""Real Redis and PostgreSQL from the machine; moto, fakesnow and a local Slack stand-in in-process."""
from __future__ import annotations

import os
import secrets
import uuid

import psycopg
import pytest
import redis as redis_lib

from bot.services import assemble
from handlers.app import web_client
from fakeslack import FakeSlack
from syncbot.sandbox.pipeline import Sandbox
from syncbot.wiring import wire

REDIS_URL = os.environ.get("SYNCBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
PG_ADMIN_URL = os.environ.get("SYNCBOT_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def redis():
    client = redis_lib.Redis.from_url(REDIS_URL)
    client.flushdb()
    yield client
    client.flushdb()
    client.close()


@pytest.fixture(scope="session")
def pg_dsn():
    """A throw-away database on the machine's PostgreSQL, standing in for Aurora."""
    name = f"syncbot_test_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield dsn
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def make_sandbox(pg_dsn):
    made = []

    def make(scenario="healthy", real_aurora=True):
        sandbox = Sandbox(scenario, aurora_dsn=pg_dsn if real_aurora else None)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.close()


@pytest.fixture
def slack():
    fake = FakeSlack()
    yield fake
    fake.close()


class Harness:
    """A sandbox pipeline, a real Redis, and the Bolt app wired to a local Slack stand-in."""

    def __init__(self, sandbox, redis, slack, timeout=8.0):
        self.sandbox, self.redis, self.slack = sandbox, redis, slack
        self.bot = assemble(sandbox.catalog, sandbox.gateways, redis, timeout=timeout)
        self.secret = secrets.token_hex(16)
        self.wiring = wire(self.bot, client=web_client("xoxb-test", slack.api_url), signing_secret=self.secret,
                           process_before_response=True, poll_s=0.01, sleep=lambda s: None)
        self.app = self.wiring.app


@pytest.fixture
def harness(make_sandbox, redis, slack):
    def make(scenario="healthy", **kwargs):
        return Harness(make_sandbox(scenario), redis, slack, **kwargs)

    return make


PG_BIN = os.environ.get("SYNCBOT_TEST_PG_BIN", "/usr/lib/postgresql/15/bin")


@pytest.fixture(scope="session")
def logical_pg():
    """A PostgreSQL server of the machine's own binaries with wal_level = logical, for the slot cases.

    The shared test server runs with wal_level = replica, where pg_create_logical_replication_slot is
    refused; changing it needs a restart of a server other sessions use. So the slot tests start their
    own throw-away cluster (initdb, as the postgres user when run as root, since initdb refuses root),
    with max_slot_wal_keep_size small enough that a few WAL switches make a slot `lost` for real."""
    import shutil
    import subprocess
    import tempfile
    from pathlib import Path

    initdb, pg_ctl = os.path.join(PG_BIN, "initdb"), os.path.join(PG_BIN, "pg_ctl")
    if not (os.path.exists(initdb) and os.path.exists(pg_ctl)):
        pytest.skip(f"no PostgreSQL server binaries in {PG_BIN} (set SYNCBOT_TEST_PG_BIN)")
    root = Path(tempfile.mkdtemp(prefix="syncbot-logical-pg-"))  # outside pytest's root-only tmp: initdb runs as postgres
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 and shutil.which("runuser") else []
    if as_user:
        shutil.chown(root, "postgres")
    data = root / "data"
    subprocess.run([*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"],
                   check=True, capture_output=True)
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(f"wal_level = logical\nmax_slot_wal_keep_size = 32MB\nmax_wal_size = 64MB\nmin_wal_size = 32MB\n"
                   f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{root}'\nfsync = off\n")
    subprocess.run([*as_user, pg_ctl, "-D", str(data), "-l", str(root / "log"), "-w", "start"],
                   check=True, capture_output=True)
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def moto_server():
    """moto's own server (ThreadedMotoServer) on a free port: the gateways' botocore clients talk HTTP to
    it as they would to AWS, with the sandbox's DMS additions installed (the same process)."""
    from moto.server import ThreadedMotoServer

    from syncbot.sandbox import moto_dms, moto_logs

    moto_dms.install()
    moto_logs.install()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(moto_server):
    """botocore clients against moto's server, its state reset for each test."""
    import boto3
    import urllib.request
    from botocore.config import Config

    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST")).read()

    def client(service):
        return boto3.client(service, region_name="us-east-1", endpoint_url=moto_server, aws_access_key_id="test",
                            aws_secret_access_key="test", config=Config(s3={"addressing_style": "path"}))

    return client
