"""A fleet of N tables on real protocol servers, the production clients talking to them through a
delaying proxy (bench/delay.py) that puts the latency L on the wire:

- DMS, CloudWatch and S3: moto's server (the sandbox's DMS additions loaded), botocore over HTTP with
  bot.services' client config (standard retries, its connection pool);
- Snowflake: fakesnow's server, snowflake-connector-python logging in over HTTP with the bot's own
  connect arguments (bot.settings), Snowpipe's telemetry answered by bench/snowpipe.py;
- Aurora: a throw-away database on the machine's PostgreSQL, psycopg logging in per query.

Counted per round, on the wire and at the servers: TCP connections per backend (what the clients'
pools opened), logins (Snowflake sessions, PostgreSQL connections), and calls (each HTTP request
botocore sent, each statement the connector sent, each query psycopg ran)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import psycopg
import snowflake.connector

from bot.catalog import Catalog, parse_catalog
from bot.gateways import Gateways
from bot.gateways.aurora import AuroraGateway
from bot.gateways.dms import DmsGateway
from bot.gateways.s3 import S3Gateway
from bot.gateways.snowflake import SnowflakeGateway
from bot.services import AWS_CONFIG, aws_session
from bot.settings import Settings
from syncbot.sandbox.scenarios import ORDERS_COLUMNS

from .fleet import catalog_toml

ROOT = Path(__file__).resolve().parents[1]
REGION = "us-east-1"

PG_ADMIN_URL = os.environ.get("SYNCBOT_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
SNOWFLAKE_POOL = Settings.model_fields["snowflake_pool_size"].default
DRIFT = ("discount_code", "character varying(64)")  # a column Aurora has and Snowflake lacks


def fleet_catalog(tables: int) -> Catalog:
    """bench/fleet.py's catalog with a bucket per DMS task: moto lists a prefix by scanning every key of
    its bucket, so one bucket for 500 tables would mostly measure moto's own CPU. The bot's calls are
    the same either way: one ListObjectsV2 per table prefix."""
    return parse_catalog(catalog_toml(tables, bucket_per_task=True), "benchmark catalog")


def drifted(i: int) -> bool:  # every 25th table has a column Snowflake lacks
    return i % 25 == 7


@dataclass
class Counts:
    """What one round cost, by (backend, what)."""
    counts: Counter

    def __getitem__(self, key: tuple[str, str]) -> int:
        return self.counts[key]

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.counts - other.counts)



class Server:
    """One of bench/servers.py's processes: its proxy's port, and its counts on demand."""

    def __init__(self, kind: str, tables: int, latency_s: float, now: datetime, pg_port: int = 5432):
        self.kind = kind
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "bench.servers", kind, "--tables", str(tables), "--latency-ms",
             str(latency_s * 1000), "--now", now.isoformat(), "--pg-port", str(pg_port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        self._lock = threading.Lock()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"bench.servers {kind} did not start")
        self.port = json.loads(line)["port"]

    def cpu_s(self) -> float:
        return cpu_seconds(self._proc.pid)

    def ask(self, do: str, **args: Any) -> Any:
        with self._lock:
            self._proc.stdin.write(json.dumps({"do": do, **args}) + "\n")
            self._proc.stdin.flush()
            return json.loads(self._proc.stdout.readline())

    def close(self) -> None:
        self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()


class World:
    """The servers, seeded once for `tables` tables; gateways() builds a fresh set of production
    clients on them (cold pools); counters() reads everything counted so far."""

    def __init__(self, tables: int, latency_s: float, stack: ExitStack):
        self.latency_s = latency_s
        self.now = datetime.now(timezone.utc)
        self._aws_calls: Counter = Counter()
        self._pg_queries: Counter = Counter()
        self._lock = threading.Lock()
        self._pg_dsn = stack.enter_context(_throwaway_database())
        self._seed_aurora(fleet_catalog(tables))
        with ThreadPoolExecutor(3) as pool:  # seeding takes a while: the three at once
            made = pool.map(lambda kind: Server(kind, tables, latency_s, self.now, urlsplit(self._pg_dsn).port or 5432),
                            ("aws", "snowflake", "aurora"))
            self.servers = {server.kind: server for server in made}
        for server in self.servers.values():
            stack.callback(server.close)

    def gateways(self) -> Gateways:
        session = aws_session(REGION, aws_access_key_id="bench", aws_secret_access_key="bench")
        endpoint = f"http://127.0.0.1:{self.servers['aws'].port}"
        clients = {name: session.client(name, endpoint_url=endpoint, config=AWS_CONFIG)
                   for name in ("dms", "cloudwatch", "logs", "s3")}
        for client in clients.values():
            client.meta.events.register("before-send", self._count_aws)
        args = self._connect_args()
        parts = urlsplit(self._pg_dsn)
        login = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        pg = parts._replace(netloc=f"{login}127.0.0.1:{self.servers['aurora'].port}").geturl()
        return Gateways(
            dms=DmsGateway(clients["dms"], clients["cloudwatch"], clients["logs"]),
            s3=S3Gateway(clients["s3"]),
            snowflake=SnowflakeGateway(lambda: snowflake.connector.connect(**args), SNOWFLAKE_POOL,
                                       read_timeout_s=Settings.model_fields["check_timeout_seconds"].default),
            aurora=AuroraGateway(pg, connect=self._pg_connect),
        )

    def counters(self) -> Counts:
        with self._lock:
            found = Counter(self._aws_calls) + Counter(self._pg_queries)
        for backend, server in self.servers.items():
            found.update({(backend, what): n for what, n in server.ask("counts").items()})
        found["aurora", "login"] = found["aurora", "TCP connections"]
        return Counts(found)

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by this process (the bot) and by each server process."""
        return {"bot": cpu_seconds(os.getpid()), **{kind: server.cpu_s() for kind, server in self.servers.items()}}

    def forget(self, pipe: str, staging_table: str) -> None:
        self.servers["snowflake"].ask("forget", pipe=pipe, history=staging_table)

    def restore(self) -> None:
        self.servers["snowflake"].ask("restore")

    def _connect_args(self) -> dict[str, Any]:
        """The bot's own connect arguments (bot.settings), pointed at the proxy in front of fakesnow."""
        settings = Settings(snowflake_account="fakesnow", snowflake_user="fake", snowflake_password="snow",
                            snowflake_database="SYNC", snowflake_schema="PUBLIC", snowflake_host="127.0.0.1",
                            snowflake_port=self.servers["snowflake"].port, snowflake_protocol="http", _env_file=None)
        return {**settings.snowflake_connect_args(), "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}}

    def _count_aws(self, event_name: str, **_: Any) -> None:
        _, service, operation = event_name.split(".", 2)
        with self._lock:
            self._aws_calls["dms" if service == "database-migration-service" else service, operation] += 1

    def _pg_connect(self, dsn: str, **kwargs: Any) -> psycopg.Connection:
        world = self

        class Counted(psycopg.Connection):
            def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:
                text = str(query)
                what = ("pg_replication_slots" if "pg_replication_slots" in text else
                        "information_schema.columns" if "information_schema.columns" in text else "row counts")
                with world._lock:
                    world._pg_queries["aurora", what] += 1
                return super().execute(query, params, **kw)

        return Counted.connect(dsn, **kwargs)

    def _seed_aurora(self, catalog: Catalog) -> None:
        with psycopg.connect(self._pg_dsn, autocommit=True) as conn:
            for i, spec in enumerate(catalog.tables):
                columns = [*ORDERS_COLUMNS, *([DRIFT] if drifted(i) else [])]
                conn.execute(f"CREATE TABLE {spec.source} ({', '.join(f'{n} {t}' for n, t in columns)})")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its reaped children, from /proc (clock ticks to seconds)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15]) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _throwaway_database() -> Iterator[str]:
    name = f"syncbot_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

