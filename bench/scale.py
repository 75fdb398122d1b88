"""In-process measurements with the same latency on every backend round trip: one table's diagnosis
against its longest chain of dependent calls, `/sync-status` for the whole catalog over HTTP, and the
S3 check's cost under a prefix with few or very many files."""
from __future__ import annotations

import errno
import secrets
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import fakeredis
import waitress

from bot.services import assemble
from bot.diagnostics.runner import Diagnoser
from bot.gateways.s3 import S3Gateway, cdc_name
from bot.models import CheckName, Status
from handlers.app import web_client
from syncbot import server
from syncbot.sandbox.slack import SandboxSlack, signed_headers, slash_command_body
from syncbot.wiring import wire

from .fleet import BUCKET, Backends, FakeS3, Fleet
from .protocols import Counts, World, fleet_catalog


@dataclass
class SingleTable:
    latency_s: float
    calls: Counter
    chain: int
    chain_parts: str
    elapsed_s: float  # median of the runs

    @property
    def sequential_s(self) -> float:
        return sum(self.calls.values()) * self.latency_s


def single_table(latency_s: float, runs: int = 5) -> SingleTable:
    """`t0000`'s diagnosis (a healthy table of a 10-table fleet), after one warm-up round that opens
    the Snowflake pool's connections, as a server that has been up for a while has them."""
    backends = Backends(latency_s)
    fleet = Fleet(10, backends)
    diagnoser = Diagnoser(fleet.gateways())
    spec = fleet.spec("t0000")
    try:
        diagnoser.diagnose(spec)
        times, counts = [], Counter()
        for _ in range(runs):
            backends.reset()
            started = time.perf_counter()
            diag = diagnoser.diagnose(spec)
            times.append(time.perf_counter() - started)
            assert diag.verdict.healthy, diag.verdict
            counts = Counter(backends.counts)
    finally:
        diagnoser.close()
    chain, parts = longest_chain(counts)
    return SingleTable(latency_s, counts, chain, parts, statistics.median(times))


def longest_chain(calls: Counter) -> tuple[int, str]:
    """The longest run of calls that must wait for one another, from what one table's round made:
    the DMS task comes before its statistics pages and its metrics; S3 windows widen one after
    another; an Aurora query waits for its login; Snowflake statements are independent."""
    dms = 1 + max(calls["dms", "DescribeTableStatistics"], calls["cloudwatch", "GetMetricData"])
    s3 = calls["s3", "ListObjectsV2"]
    aurora = 2 if calls["aurora", "login"] else 1
    snowflake = 1 + (1 if calls["snowflake", "login"] else 0)
    chains = {"DescribeReplicationTasks -> DescribeTableStatistics/GetMetricData": dms,
              "Aurora login -> query": aurora, "ListObjectsV2 windows": s3, "Snowflake statement": snowflake}
    name = max(chains, key=chains.get)
    return chains[name], name


@dataclass
class FleetRun:
    tables: int
    elapsed_s: float
    calls: Counter
    header: str  # the posted message's first line


def fleet_status(tables: int, latency_s: float) -> FleetRun:
    """A signed `/sync-status` over HTTP to the production WSGI app under waitress; the clock stops when
    the answer reaches the Slack stand-in. Counts every backend round trip of that one command."""
    backends = Backends(latency_s)
    fleet = Fleet(tables, backends)
    slack = SandboxSlack()
    secret = secrets.token_hex(16)
    wiring = wire(assemble(fleet.catalog, fleet.gateways(), fakeredis.FakeRedis()),
                  client=web_client("xoxb-bench", slack.api_url), signing_secret=secret)
    bot, app = wiring.bot, wiring.app
    http = waitress.create_server(server.wsgi_app(app, bot), host="127.0.0.1", port=0, threads=server.HTTP_THREADS)
    threading.Thread(target=_serve, args=(http,), daemon=True).start()
    try:
        _post(http.effective_port, slack, "t0000", secret)  # warm-up: Snowflake logins, auth.test
        _posted(slack, 1)
        backends.reset()
        started = time.perf_counter()
        _post(http.effective_port, slack, "", secret)
        message = _posted(slack, 2)
        elapsed = time.perf_counter() - started
        return FleetRun(tables, elapsed, Counter(backends.counts), message.params["blocks"][0]["text"]["text"])
    finally:
        http.close()
        slack.close()
        bot.diagnoser.close()


def _serve(http: Any) -> None:
    """waitress's loop, until the measurement closes the server: closing its sockets while the loop waits
    in select() ends the loop with EBADF, which is how it stops here (not a failure to print)."""
    try:
        http.run()
    except OSError as exc:
        if exc.errno != errno.EBADF:
            raise


def _post(port: int, slack: SandboxSlack, text: str, secret: str) -> None:
    import http.client

    body = slash_command_body(text, "U0BENCH01", "C0BENCH01", slack.response_url())
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("POST", "/slack/events", body=body.encode(), headers=signed_headers(body, secret))
    status = conn.getresponse().status
    conn.close()
    if status != 200:
        raise RuntimeError(f"/sync-status {text} was answered {status}")


def _posted(slack: SandboxSlack, count: int, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while len(slack.of("chat.postMessage")) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("the answer never reached Slack")
        time.sleep(0.002)
    return slack.of("chat.postMessage")[count - 1]


@dataclass
class S3Cost:
    objects: int
    newest_minutes: int
    calls: int
    keys_read: int
    elapsed_s: float
    found: str


def s3_cost(objects: int, newest_minutes: int, latency_s: float) -> S3Cost:
    """The S3 check for one prefix holding `objects` files: CDC files one a minute, the newest
    `newest_minutes` old, plus 1 000 full-load files (which sort after every CDC name)."""
    backends = Backends(latency_s)
    now = datetime.now(timezone.utc)
    prefix = "dms/public/orders/"
    s3 = FakeS3(backends)
    cdc = max(0, objects - 1000) if objects > 1000 else objects
    keys = [prefix + cdc_name(now - timedelta(minutes=newest_minutes + i)) for i in range(cdc)]
    keys += [prefix + f"LOAD{i:08d}.csv" for i in range(objects - cdc)]
    s3.put_many(BUCKET, keys)
    started = time.perf_counter()
    files = S3Gateway(s3).recent_cdc_files(BUCKET, prefix, now)
    elapsed = time.perf_counter() - started
    found = f"newest {files.newest_key.rsplit('/', 1)[-1]}, {files.last_hour} in the last hour" if files.newest_key \
        else "no CDC file in 7 days"
    return S3Cost(objects, newest_minutes, backends.counts["s3", "ListObjectsV2"], s3.keys_returned, elapsed, found)


# -- Through real protocols (bench/protocols.py) -----------------------------------------------------

@dataclass
class ProtocolRun:
    tables: int
    elapsed_s: float  # median of the measured rounds
    cold: Counts  # the first round of a fresh server: `/sync-status t0000`, pools empty
    calls: Counts  # one `/sync-status` of every table, pools warm
    cpu: dict[str, float]  # CPU seconds of that round: this process (the bot) and each server
    header: str


def fleet_over_protocols(world: World, tables: int, redis_client: Any, rounds: int = 3) -> ProtocolRun:
    """`syncbot serve`'s WSGI app under waitress, on fresh production clients of the world's servers:
    one cold `/sync-status t0000` (the pools fill), an uncounted round (warm_translation), then
    `rounds` of `/sync-status` for the first `tables` tables."""
    catalog = fleet_catalog(tables)
    slack = SandboxSlack()
    secret = secrets.token_hex(16)
    wiring = wire(assemble(catalog, world.gateways(), redis_client),
                  client=web_client("xoxb-bench", slack.api_url), signing_secret=secret)
    bot, app = wiring.bot, wiring.app
    http = waitress.create_server(server.wsgi_app(app, bot), host="127.0.0.1", port=0, threads=server.HTTP_THREADS)
    threading.Thread(target=_serve, args=(http,), daemon=True).start()
    try:
        start = world.counters()
        _post(http.effective_port, slack, "t0000", secret)
        _posted(slack, 1)
        cold = world.counters() - start
        warm_translation(world, catalog)
        times, counts, cpu, header = [], None, {}, ""
        for n in range(rounds):
            before, cpu_before = world.counters(), world.cpu()
            started = time.perf_counter()
            _post(http.effective_port, slack, "", secret)
            message = _posted(slack, 2 + n)
            times.append(time.perf_counter() - started)
            if counts is None:
                counts = world.counters() - before
                cpu = {who: used - cpu_before[who] for who, used in world.cpu().items()}
            header = message.params["blocks"][0]["text"]["text"]
        return ProtocolRun(tables, statistics.median(times), cold, counts, cpu, header)
    finally:
        http.close()
        slack.close()
        bot.diagnoser.close()


def warm_translation(world: World, catalog: Any) -> None:
    """An uncounted round with no deadline, on clients of its own: fakesnow translates each of the
    round's statements once (bench/servers.py). With a deadline it could stop short, and the statements
    left in flight would be merged into other ones by the next round, each new to fakesnow again."""
    diagnoser = Diagnoser(world.gateways(), timeout=300)
    try:
        diagnoser.diagnose_many(list(catalog.tables))
    finally:
        diagnoser.close()


@dataclass
class RefusalRun:
    tables: int
    elapsed_s: float
    clean: Counts  # the same round with nothing refused
    calls: Counts
    unknown: dict[str, list[str]]  # check name -> the tables it could not answer for
    broken: list[str]  # the tables whose pipe or staging table was taken away


def refused_batch(world: World, tables: int) -> RefusalRun:
    """A fleet round on warm clients after one table's pipe and another's staging table are gone:
    Snowflake refuses the statements that name them, and the gateway re-splits them (measured after
    warm_translation has had fakesnow translate the halves)."""
    catalog = fleet_catalog(tables)
    # What is measured is the refusal's cost (statements, logins, which answers are lost), so the
    # deadline is set out of reach: on a loaded machine it would otherwise decide which answers arrive.
    # The fleet view's own time is measured, with the production deadline, by fleet_over_protocols.
    diagnoser = Diagnoser(world.gateways(), timeout=120)
    no_pipe, no_staging = catalog.tables[123 % tables], catalog.tables[321 % tables]
    try:
        diagnoser.diagnose_many(list(catalog.tables))  # warm: the pool's logins happen here
        before = world.counters()
        diagnoser.diagnose_many(list(catalog.tables))
        clean = world.counters() - before
        world.forget(no_pipe.pipe, no_staging.staging_table)
        try:
            warm_translation(world, catalog)
            before = world.counters()
            started = time.perf_counter()
            diags = diagnoser.diagnose_many(list(catalog.tables))
            elapsed = time.perf_counter() - started
            calls = world.counters() - before
        finally:
            world.restore()
    finally:
        diagnoser.close()
    unknown: dict[str, list[str]] = {}
    for diag in diags:
        for check in diag.checks:
            if check.status is Status.UNKNOWN and check.name is not CheckName.SLOT:
                unknown.setdefault(check.name.value, []).append(diag.table)
    return RefusalRun(tables, elapsed, clean, calls, unknown, [no_pipe.name, no_staging.name])
