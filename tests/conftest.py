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
