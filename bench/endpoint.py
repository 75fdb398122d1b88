"""The public endpoint under abuse, against `syncbot serve`'s own server (bench.target: waitress with
syncbot.server's limits), on 127.0.0.1 only: peak RSS while an unsigned 150 MiB POST is sent, and
/healthz latency while hundreds of connections sit idle with unfinished headers.

    python -m bench.endpoint
"""
from __future__ import annotations

import socket
import statistics
import time
import urllib.request

from .serving import Slack, Target

OVERSIZED_MIB = 150
IDLE_CROWDS = (0, 300, 900)
PROBES = 9


def oversized_post(target: Target) -> tuple[str, float, float, float]:
    """(status line, MiB the server let us send before answering, peak RSS before, after)."""
    before = target.peak_rss_mib()
    head = (f"POST /slack/events HTTP/1.1\r\nHost: bench\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Slack-Request-Timestamp: {int(time.time())}\r\nContent-Length: {OVERSIZED_MIB * 2**20}\r\n\r\n")
    chunk = b"x" * 2**20
    sent = 0
    with socket.create_connection(("127.0.0.1", target.port), timeout=60) as sock:
        sock.sendall(head.encode())
        try:
            for _ in range(OVERSIZED_MIB):
                sock.sendall(chunk)
                sent += 1
        except OSError:
            pass  # answered and closed before the end: what a limit looks like from outside
        try:
            status = sock.recv(200).split(b"\r\n")[0].decode()
        except OSError as exc:
            status = type(exc).__name__
    time.sleep(0.5)
    return status, sent, before, target.peak_rss_mib()


def healthz_ms(target: Target, idle: int) -> tuple[float, float]:
    """Median and worst /healthz latency (ms) while `idle` connections hold unfinished requests."""
    crowd = []
    try:
        for _ in range(idle):
            sock = socket.create_connection(("127.0.0.1", target.port), timeout=5)
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: bench\r\n")
            crowd.append(sock)
        times = []
        for _ in range(PROBES):
            start = time.perf_counter()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{target.port}/healthz", timeout=10).read()
                times.append((time.perf_counter() - start) * 1000)
            except OSError:
                times.append(float("inf"))
        return statistics.median(times), max(times)
    finally:
        for sock in crowd:
            sock.close()


def main() -> None:
    slack = Slack()
    target = Target(slack, tables=10, latency_ms=5)
    try:
        status, sent, before, after = oversized_post(target)
        print(f"unsigned {OVERSIZED_MIB} MiB POST: {status!r} after {sent} MiB sent; "
              f"peak RSS {before:.0f} -> {after:.0f} MiB")
        print(f"{'idle connections':>17} | {'/healthz median':>15} | {'worst':>9}")
        for idle in IDLE_CROWDS:
            median, worst = healthz_ms(target, idle)
            print(f"{idle:>17} | {median:>12.1f} ms | {worst:>6.1f} ms")
    finally:
        target.stop()
        slack.close()


if __name__ == "__main__":
    main()
