"""`python -m bench`: syncbot's speed and memory at fleet scale, against its targets.

The fleet view runs the production clients over real protocols (bench/protocols.py: moto's and
fakesnow's servers, the machine's PostgreSQL, a delaying proxy putting L on the wire). The other
measurements use stand-ins where the gateways meet their drivers (bench/fleet.py), each round trip
costing exactly L. Slack is syncbot.sandbox.slack; the server is the production WSGI app under waitress.
Prints the machine, then one table per measurement, then the targets with PASS/FAIL."""
from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import fakeredis
import redis

from bot.diagnostics.runner import CHUNK
from bot.services import redacted_url

from . import scale, serving
from .protocols import SNOWFLAKE_POOL, Counts, World
from .target import REDIS_URL_ENV


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer bursts and diagnoses (a smoke run)")
    parser.add_argument("--redis", metavar="URL", help="a real Redis for the server (its keys are syncbot's; use "
                        "a database of its own), instead of an in-memory one")
    args = parser.parse_args(argv)
    if args.redis:
        os.environ[REDIS_URL_ENV] = args.redis
    started = time.monotonic()
    print(machine())
    verdicts = [single_table(), *fleet((10, 100) if args.quick else (10, 100, 500), rounds=1 if args.quick else 3),
                s3(), *acks(bursts=3 if args.quick else 10, runs=1 if args.quick else 3),
                memory(200 if args.quick else 1000)]
    steady(2 if args.quick else 5)
    print(f"\n## Targets ({time.monotonic() - started:.0f} s)\n")
    for ok, text in verdicts:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    return 0 if all(ok for ok, _ in verdicts) else 1


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else "?"
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    started = time.perf_counter()
    sum(i * i for i in range(3_000_000))  # a fixed piece of work: how fast this machine is right now
    loop = (time.perf_counter() - started) * 1000
    pressure = Path("/proc/pressure/cpu")
    # How much of the last 10 s something else made runnable tasks wait for a CPU (other jobs here).
    stalled = pressure.read_text().split()[1].split("=")[1] + " %" if pressure.exists() else "?"
    redis = "Redis " + redacted_url(os.environ[REDIS_URL_ENV]) if os.environ.get(REDIS_URL_ENV) else "in-memory Redis"
    return (f"# syncbot benchmark\n\nnproc {os.cpu_count()} · {cpu} · Python {platform.python_version()} · "
            f"{platform.system()} {platform.release()} · load average {load} · CPU pressure (10 s) {stalled} · "
            f"3M-step Python loop {loop:.0f} ms · {redis}")


def table(title: str, head: list[str], rows: list[list[object]]) -> None:
    cells = [head] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    print(f"\n## {title}\n")
    for n, row in enumerate(cells):
        print("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths)) + " |")
        if n == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")


def ms(seconds: float) -> str:
    return "never (404)" if seconds == serving.NEVER else f"{seconds * 1000:.0f} ms"


def single_table() -> tuple[bool, str]:
    runs = [scale.single_table(latency) for latency in (0.05, 0.2)]
    table("One table's diagnosis, every round trip delayed by L (median of 5)",
          ["L", "round trips", "one after another", "longest chain", "chain × L", "measured", "measured / (chain × L)"],
          [[ms(r.latency_s), sum(r.calls.values()), ms(r.sequential_s), f"{r.chain} ({r.chain_parts})",
            ms(r.chain * r.latency_s), ms(r.elapsed_s), f"{r.elapsed_s / (r.chain * r.latency_s):.2f}"] for r in runs])
    worst = max(r.elapsed_s / (r.chain * r.latency_s) for r in runs)
    return worst <= 1.5, f"one table's diagnosis: {worst:.2f} × (longest chain × L), target ≤ 1.5"


# Calls of a fleet answer through real protocols, by (backend, what), in the order they are shown.
FLEET_CALLS = [
    ("dms", "DescribeReplicationTasks", "per task"), ("dms", "DescribeTableStatistics", "pages per task"),
    ("cloudwatch", "GetMetricData", "all tasks' series"),
    ("logs", "FilterLogEvents", "per broken task (every task runs: none)"), ("s3", "ListObjectsV2", "per table prefix"),
    ("aws", "TCP connections", "botocore's pool (32)"),
    ("snowflake", "SYSTEM$PIPE_STATUS", f"{CHUNK['pipe']} pipes a statement"),
    ("snowflake", "COPY_HISTORY", f"{CHUNK['history']} tables a statement"),
    ("snowflake", "MAX(freshness column)", f"{CHUNK['newest']} tables a statement"),
    ("snowflake", "information_schema.columns", f"{CHUNK['sfcols']} tables a statement"),
    ("snowflake", "COUNT(*) of final tables", f"{CHUNK['rows']} tables a statement"),
    ("snowflake", "SHOW TASKS", "per database"), ("snowflake", "TASK_HISTORY", f"{CHUNK['taskruns']} tasks a statement"),
    ("snowflake", "login", f"pool of {SNOWFLAKE_POOL}, warm"), ("snowflake", "TCP connections", "the connector's"),
    ("aurora", "information_schema.columns", "one query"), ("aurora", "row counts", f"{CHUNK['pgrows']} tables a query"),
    ("aurora", "pg_replication_slots", "one query"),
    ("aurora", "login", "one per query"),
]
SNOWFLAKE_STATEMENTS = ("SYSTEM$PIPE_STATUS", "COPY_HISTORY", "MAX(freshness column)", "information_schema.columns",
                        "COUNT(*) of final tables", "SHOW TASKS", "TASK_HISTORY")


def fleet(sizes: tuple[int, ...], rounds: int) -> list[tuple[bool, str]]:
    """`/sync-status` through real protocols (bench/protocols.py), every round trip delayed by 50 ms."""
    started = time.monotonic()
    with ExitStack() as stack:
        world = World(max(sizes), 0.05, stack)
        seeded = time.monotonic() - started
        store = (redis.Redis.from_url(os.environ[REDIS_URL_ENV]) if os.environ.get(REDIS_URL_ENV)
                 else fakeredis.FakeRedis())
        runs = [scale.fleet_over_protocols(world, n, store, rounds) for n in sizes]
        refused = scale.refused_batch(world, max(sizes))
    table(f"`/sync-status` for the whole catalog through real protocols, L = 50 ms on the wire (DMS tasks of 100 "
          f"tables; median of {rounds} rounds after an uncounted one; servers seeded in {seeded:.0f} s). CPU is what "
          f"the round cost this process (the bot) and each server process: moto, fakesnow",
          ["tables", "answered in", "calls", "per table", "logins: cold / warm round", "TCP connections",
           "CPU s: bot / moto / fakesnow", "answer's header"],
          [[r.tables, ms(r.elapsed_s), calls(r.calls), f"{calls(r.calls) / r.tables:.2f}",
            f"{logins(r.cold)} / {logins(r.calls)}", connections(r.calls),
            " / ".join(f"{r.cpu[who]:.1f}" for who in ("bot", "aws", "snowflake")), r.header] for r in runs])
    table("Calls of one `/sync-status` (all tables) through real protocols, by backend call: count (per table)",
          ["backend", "call", "bounded by", *[f"{r.tables} tables" for r in runs]],
          [[backend, call, bound, *[f"{r.calls[backend, call]} ({r.calls[backend, call] / r.tables:.2f})" for r in runs]]
           for backend, call, bound in FLEET_CALLS])
    clean_sf = sum(refused.clean["snowflake", s] for s in SNOWFLAKE_STATEMENTS)
    refused_sf = sum(refused.calls["snowflake", s] for s in SNOWFLAKE_STATEMENTS)
    unknown = sorted({t for tables in refused.unknown.values() for t in tables})
    table(f"A refused batch: {refused.tables} tables, the pipe of {refused.broken[0]} and the staging table of "
          f"{refused.broken[1]} gone, so Snowflake refuses the statements naming them (through the same servers; "
          f"the deadline out of reach, so that this machine's speed does not decide which answers arrive)",
          ["answered in", "Snowflake statements: clean round / this round", "logins", "tables answered 'unknown'"],
          [[ms(refused.elapsed_s), f"{clean_sf} / {refused_sf}", logins(refused.calls),
            (", ".join(f"{t} ({', '.join(c for c, ts in refused.unknown.items() if t in ts)})" for t in unknown[:5])
             + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")) or "none"]])

    big = runs[-1]
    n, tasks = big.tables, -(-big.tables // 100)
    statements = sum(-(-n * per // CHUNK[kind]) for kind, per in (("pipe", 1), ("history", 1), ("newest", 1),
                                                                   ("sfcols", 2), ("rows", 1), ("taskruns", 1),
                                                                   ("tasks", 1)))
    snowflake = sum(big.calls["snowflake", s] for s in SNOWFLAKE_STATEMENTS)
    bounded = (big.calls["dms", "DescribeReplicationTasks"] == tasks
               and big.calls["dms", "DescribeTableStatistics"] == tasks
               and big.calls["cloudwatch", "GetMetricData"] == 1 and big.calls["logs", "FilterLogEvents"] == 0
               and big.calls["s3", "ListObjectsV2"] <= n
               and snowflake <= statements)
    most_logins = max([logins(r.cold) for r in runs] + [logins(r.calls) for r in runs] + [logins(refused.calls)])
    # Halving pins one refused item in 2 statements per level: 2 * ceil(log2(chunk)) per refused statement.
    resplit = sum(2 * math.ceil(math.log2(CHUNK[kind])) for kind in ("pipe", "history"))
    return [(big.elapsed_s < 3, f"/sync-status for {n} tables at L = 50 ms through real protocols: {ms(big.elapsed_s)}, "
                                f"target < 3 s"),
            (bounded, f"backend calls at {n} tables: {big.calls['dms', 'DescribeReplicationTasks']} "
                      f"DescribeReplicationTasks and {big.calls['dms', 'DescribeTableStatistics']} "
                      f"DescribeTableStatistics for {tasks} tasks, {big.calls['cloudwatch', 'GetMetricData']} "
                      f"GetMetricData, {big.calls['logs', 'FilterLogEvents']} FilterLogEvents, "
                      f"{snowflake} Snowflake statements (bound {statements}), "
                      f"{big.calls['s3', 'ListObjectsV2']} ListObjectsV2 (one per prefix)"),
            (most_logins <= SNOWFLAKE_POOL, f"Snowflake logins per round: at most {most_logins} (cold round "
                                            f"{logins(big.cold)}, warm {logins(big.calls)}, with a refused batch "
                                            f"{logins(refused.calls)}), target ≤ the pool size {SNOWFLAKE_POOL}"),
            (set(unknown) <= set(refused.broken) and refused_sf - clean_sf <= resplit,
             f"a refused batch costs its re-split: {refused_sf - clean_sf} more statements (bound {resplit}), "
             f"'unknown' only for {', '.join(unknown) or 'no table'} of {refused.tables}, target: only the broken "
             f"tables ({', '.join(refused.broken)})")]


def calls(counts: Counts) -> int:
    """Requests and statements the round sent (logins and connections apart)."""
    return sum(v for (backend, what), v in counts.counts.items() if what not in ("login", "TCP connections"))


def logins(counts: Counts) -> int:
    return counts["snowflake", "login"]


def connections(counts: Counts) -> str:
    return " / ".join(f"{backend} {counts[backend, 'TCP connections']}" for backend in ("aws", "snowflake", "aurora"))


def s3() -> tuple[bool, str]:
    runs = [scale.s3_cost(n, newest, 0.05) for newest in (3, 200) for n in (10, 100_000)]
    table("The S3 check under one prefix, L = 50 ms (CDC files one a minute; 1 000 full-load files at 100 000)",
          ["objects under the prefix", "newest CDC file", "ListObjectsV2 calls", "keys read", "time", "found"],
          [[f"{r.objects:,}", f"{r.newest_minutes} min old", r.calls, f"{r.keys_read:,}", ms(r.elapsed_s), r.found]
           for r in runs])
    flat = all(a.calls == b.calls for a, b in zip(runs[::2], runs[1::2]))
    most = max(r.keys_read for r in runs)
    return flat and most <= 2000, (f"S3 check cost does not grow with old files: same calls at 10 and 100 000 "
                                   f"objects, at most {most:,} keys read")


def acks(bursts: int, runs: int) -> list[tuple[bool, str]]:
    pinned = [serving.ack_bursts(tables=50, latency_ms=50, slow_snowflake_ms=10_000, bursts=bursts, size=50,
                                 pause_s=0.5, pinned=True) for _ in range(runs)]
    shared = serving.ack_bursts(tables=50, latency_ms=50, slow_snowflake_ms=10_000, bursts=bursts, size=50,
                                pause_s=0.5, pinned=False)
    rows = []
    for where, results in ((f"server on one CPU, {runs} runs", pinned), ("every CPU shared, 1 run", [shared])):
        commands = [t for r in results for t in r.commands]
        clicks = [t for r in results for t in r.clicks]
        for name, values in (("/sync-status <table>", commands), ("fix button click", clicks),
                             ("all", commands + clicks)):
            rows.append([where, name, len(values), *[ms(serving.percentile(values, q)) for q in (50, 95, 99)],
                         ms(max(values))])
    table(f"Acknowledgement over HTTP, signed: {bursts} bursts of 50 requests sent at once, 0.5 s apart, after one "
          f"uncounted burst. Snowflake has gone slow (10 s a statement, past the 8 s deadline), so every diagnosis "
          f"holds its listener until its deadline: up to {pinned[0].running_max} running at a burst, "
          f"{pinned[0].answered_during} answered while the bursts ran. The load generator and the Slack stand-in run "
          f"on the other CPU(s), or share every CPU with the server",
          ["run", "request", "n", "p50", "p95", "p99", "max"], rows)
    p99 = serving.percentile([t for r in pinned for t in r.commands + r.clicks], 99)
    every = serving.percentile(shared.commands + shared.clicks, 99)
    return [(p99 < 0.1, f"ack p99 with 50 requests in flight: {ms(p99)}, target < 100 ms "
                        f"(every CPU shared with the load generator: {ms(every)})")]


def steady(seconds: float) -> None:
    """Not a target: what steady load does to the acknowledgements, up to a server running flat out."""
    runs = serving.ack_steady(tables=50, latency_ms=50, loads=[(100, 0), (300, 0), (0, 10), (0, 50)], seconds=seconds)
    table(f"Acknowledgement under steady load for {seconds:g} s each, healthy backends (L = 50 ms), server on one "
          f"CPU, half /sync-status <table> and half fix button clicks. Not the target's bursts: with some always in "
          f"flight the server runs flat out, and the wait is what is in flight divided by what it can answer a second",
          ["load", "answered", "a second", "p50", "p95", "p99", "max", "diagnoses answered meanwhile"],
          [[r.load, len(r.waited), f"{len(r.waited) / r.seconds:.0f}",
            *[ms(serving.percentile(r.waited, q)) for q in (50, 95, 99)], ms(max(r.waited)),
            f"{r.answered} of {(len(r.waited) + 1) // 2}"] for r in runs])


def memory(diagnoses: int) -> tuple[bool, str]:
    checkpoints = (10, 100, diagnoses) if diagnoses > 100 else (10, diagnoses)
    found = serving.memory(tables=50, latency_ms=50, checkpoints=checkpoints, in_flight=10)
    base = found[10][0]
    table("Peak RSS (VmHWM) of the server, `/sync-status <table>` with up to 10 diagnoses running, L = 50 ms",
          ["diagnoses answered", "peak RSS", "vs after 10", "threads"],
          [[n, f"{rss:.1f} MiB", f"{rss / base:.3f}", threads] for n, (rss, threads) in found.items()])
    ratio = found[diagnoses][0] / base
    return ratio <= 1.10, f"peak RSS after {diagnoses} diagnoses: {ratio:.3f} × its value after 10, target ≤ 1.10"


if __name__ == "__main__":
    sys.exit(main())
