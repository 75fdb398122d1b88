"""Measurements against `syncbot serve` in its own process, over real HTTP with signed requests:
acknowledgement latency under bursts, and peak memory over many diagnoses.

Three processes share the machine: the server (bench.target), the Slack stand-in it posts answers to
(syncbot.sandbox.slack.SandboxSlack, in a child process), and this one, which sends requests from a single
thread multiplexing its sockets, so that timing them costs this process next to nothing."""
from __future__ import annotations

import http.client
import math
import multiprocessing
import os
import secrets
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from syncbot.sandbox.slack import SandboxSlack, block_actions_body, signed_headers, slash_command_body

CHANNEL = "C0BENCH01"
USER = "U0BENCH01"  # not an approver: a click is answered (politely refused) and changes nothing
NEVER = float("inf")  # an answer that is not 200: Bolt gave up waiting for ack() (3 s) and said 404


class Slack:
    """SandboxSlack in a child process, asked over a pipe what reached it."""

    def __init__(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve_slack, args=(child,), daemon=True)
        self._proc.start()
        self.url = self._ask("url")
        self.api_url = self.url + "/api/"
        self._seq = 0

    def _ask(self, question: str) -> Any:
        self._conn.send(question)
        return self._conn.recv()

    @property
    def pid(self) -> int:
        return self._proc.pid

    def response_url(self) -> str:
        self._seq += 1
        return f"{self.url}/response/{self._seq}"

    def posted(self) -> int:
        """chat.postMessage calls so far: one per diagnosis answered."""
        return self._ask("posted")

    def fix_buttons(self) -> tuple[list[dict[str, Any]], str]:
        return self._ask("buttons")

    def close(self) -> None:
        self._conn.send("stop")
        self._proc.join(5)


def _serve_slack(conn: Any) -> None:
    # A server stopped mid-answer leaves broken pipes behind; they say nothing about the measurement.
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    slack = SandboxSlack()
    while True:
        question = conn.recv()
        if question == "stop":
            slack.close()
            return
        if question == "url":
            conn.send(slack.url)
        elif question == "posted":
            conn.send(len(slack.of("chat.postMessage")))
        elif question == "buttons":
            # The fix buttons (the actions block also holds the overflow menu, which is not a button).
            conn.send(next(([e for b in m.params.get("blocks", []) if b["type"] == "actions" for e in b["elements"]
                             if e["type"] == "button"],
                            m.ts) for m in slack.of("chat.postMessage")
                           if any(b["type"] == "actions" for b in m.params.get("blocks", []))))


class Target:
    """`python -m bench.target` on a free port, stopped by its own pid."""

    def __init__(self, slack: Slack, tables: int, latency_ms: float, slow_snowflake_ms: float = 0):
        self.secret = secrets.token_hex(16)
        self.port = _free_port()
        self._log = tempfile.NamedTemporaryFile(prefix="syncbot-bench-", suffix=".log", delete=False)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.target", "--port", str(self.port), "--slack-api-url", slack.api_url,
             "--tables", str(tables), "--latency-ms", str(latency_ms), "--slow-snowflake-ms", str(slow_snowflake_ms)],
            env={**os.environ, "SLACK_SIGNING_SECRET": self.secret}, stdout=self._log, stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"bench target exited:\n{self.log_tail()}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
                conn.request("GET", "/healthz")
                if conn.getresponse().status == 200:
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"bench target did not start:\n{self.log_tail()}")

    def peak_rss_mib(self) -> float:
        """VmHWM: the most memory the process has had resident so far."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmHWM in /proc/<pid>/status")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/task"))

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(Path(self._log.name).read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        os.unlink(self._log.name)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def command_body(slack: Slack, table: str) -> str:
    return slash_command_body(table, USER, CHANNEL, slack.response_url())


def click_body(slack: Slack, button: dict[str, Any], message_ts: str) -> str:
    action = {"action_id": button["action_id"], "block_id": "syncbot.fixes", "value": button["value"],
              "text": button["text"]}
    return block_actions_body(action, USER, CHANNEL, message_ts, slack.response_url())


class InFlight:
    """Signed requests on their own connections (as Slack sends them), multiplexed on this one thread,
    each timed from its connect to the last byte of its answer."""

    def __init__(self, target: Target):
        self._target, self._sel, self.count = target, selectors.DefaultSelector(), 0

    def send(self, body: str, tag: Any = None) -> None:
        sock = socket.socket()
        sock.setblocking(False)
        started = time.perf_counter()
        sock.connect_ex(("127.0.0.1", self._target.port))
        self._sel.register(sock, selectors.EVENT_WRITE, [tag, _http_request(self._target, body), started, b""])
        self.count += 1

    def answered(self, timeout: float) -> list[tuple[Any, float]]:
        """(tag, seconds) of the requests answered within `timeout` (NEVER for an answer not 200)."""
        done = []
        for key, events in self._sel.select(timeout=timeout):
            sock, state = key.fileobj, key.data
            if events & selectors.EVENT_WRITE:
                sock.sendall(state[1])
                self._sel.modify(sock, selectors.EVENT_READ, state)
                continue
            chunk = sock.recv(65536)
            state[3] += chunk
            if not chunk or _complete(state[3]):
                ok = state[3].startswith(b"HTTP/1.1 200")
                done.append((state[0], time.perf_counter() - state[2] if ok else NEVER))
                self._sel.unregister(sock)
                sock.close()
                self.count -= 1
        return done


def send_at_once(target: Target, bodies: list[str]) -> list[float]:
    """Sends every body at the same instant and returns the seconds each waited for its answer."""
    flight, done = InFlight(target), {}
    for i, body in enumerate(bodies):
        flight.send(body, i)
    deadline = time.monotonic() + 30
    while flight.count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{flight.count} requests had no answer after 30 s")
        done.update(flight.answered(timeout=0.5))
    return [done[i] for i in range(len(bodies))]


def send_steadily(target: Target, body: Callable[[int], str], seconds: float, rate: float = 0,
                  in_flight: int = 0) -> list[float]:
    """For `seconds`, either `rate` requests a second at even intervals, whatever the answers (an open
    loop), or `in_flight` requests kept outstanding, the next sent as one is answered (a closed loop:
    the server's own speed sets the rate). Returns the seconds each waited for its answer."""
    flight, waited, sent = InFlight(target), [], 0
    began = time.perf_counter()
    end = began + seconds
    while True:
        now = time.perf_counter()
        if rate:
            while now < end and began + sent / rate <= now:
                flight.send(body(sent))
                sent += 1
        else:
            while now < end and flight.count < in_flight:
                flight.send(body(sent))
                sent += 1
        if not flight.count and now >= end:
            return waited
        wait = min(max(0.0, began + sent / rate - now), 0.05) if rate and now < end else 0.05
        waited += [seconds for _, seconds in flight.answered(timeout=wait)]


def _http_request(target: Target, body: str) -> bytes:
    headers = {**signed_headers(body, target.secret), "host": f"127.0.0.1:{target.port}",
               "content-length": str(len(body.encode())), "connection": "close"}
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"POST /slack/events HTTP/1.1\r\n{head}\r\n".encode() + body.encode()


def _complete(raw: bytes) -> bool:
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def wait_for_posts(slack: Slack, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while (posted := slack.posted()) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {posted} of {count} answers were posted")
        time.sleep(0.01)


@dataclass
class AckResult:
    commands: list[float]
    clicks: list[float]
    running_max: int  # most diagnoses still running when a burst was sent
    answered_during: int = 0  # diagnoses the bursts started that were answered while they ran


@dataclass
class Served:
    slack: Slack
    target: Target
    tables: int
    buttons: list[dict[str, Any]]
    message_ts: str

    def body(self, i: int) -> str:
        """/sync-status <table> for even i, a click on one of the real fix buttons for odd i."""
        if i % 2:
            return click_body(self.slack, self.buttons[i % len(self.buttons)], self.message_ts)
        return command_body(self.slack, f"t{i % self.tables:04d}")


@contextmanager
def serving(tables: int, latency_ms: float, slow_snowflake_ms: float, pinned: bool) -> Iterator[Served]:
    """A server with one diagnosis answered (a paused pipe: its answer has fix buttons), then Snowflake
    slowed to `slow_snowflake_ms` a statement. `pinned`: the server on one CPU, this process and the
    Slack stand-in on the others."""
    slack = Slack()
    target = Target(slack, tables, latency_ms, slow_snowflake_ms)
    everywhere = os.sched_getaffinity(0)
    if pinned and len(everywhere) > 1:
        server_cpu = min(everywhere)
        os.sched_setaffinity(target.proc.pid, {server_cpu})
        for pid in (0, slack.pid):
            os.sched_setaffinity(pid, everywhere - {server_cpu})
    try:
        send_at_once(target, [command_body(slack, "t0003")])
        wait_for_posts(slack, 1)
        buttons, ts = slack.fix_buttons()
        if slow_snowflake_ms:
            target.proc.send_signal(signal.SIGUSR1)  # from now on Snowflake is slow
        yield Served(slack, target, tables, buttons, ts)
    finally:
        os.sched_setaffinity(0, everywhere)
        target.stop()
        slack.close()


def ack_bursts(tables: int, latency_ms: float, slow_snowflake_ms: float, bursts: int, size: int,
               pause_s: float, pinned: bool) -> AckResult:
    """`bursts` times, `size` signed requests at the same instant (half /sync-status <table>, half clicks
    on a real fix button), while Snowflake takes `slow_snowflake_ms` a statement, so that every
    diagnosis the bursts start is still running. One more burst first, not counted: the server's
    threads are up, as in a server that has been running for a while."""
    with serving(tables, latency_ms, slow_snowflake_ms, pinned) as served:
        slack = served.slack
        result, commands_sent = AckResult([], [], 0), 1
        for burst in range(bursts + 1):
            result.running_max = max(result.running_max, commands_sent - slack.posted())
            answered = send_at_once(served.target, [served.body(burst * size + i) for i in range(size)])
            if burst:
                result.commands += answered[0::2]
                result.clicks += answered[1::2]
            commands_sent += (size + 1) // 2
            time.sleep(pause_s)
        result.answered_during = slack.posted() - 1
        return result


@dataclass
class SteadyResult:
    load: str
    waited: list[float]
    seconds: float
    answered: int  # diagnoses posted while the load ran (one for every two requests sent)


def ack_steady(tables: int, latency_ms: float, loads: list[tuple[float, int]], seconds: float) -> list[SteadyResult]:
    """Steady load instead of bursts, healthy backends: for each (rate, in_flight), `seconds` of
    requests at `rate` a second (an open loop) or with `in_flight` always outstanding (a closed loop,
    which runs the server flat out), server on one CPU."""
    results = []
    with serving(tables, latency_ms, 0, pinned=True) as served:
        for rate, in_flight in loads:
            started, posted = time.perf_counter(), served.slack.posted()
            waited = send_steadily(served.target, served.body, seconds, rate=rate, in_flight=in_flight)
            load = f"{rate:.0f} a second" if rate else f"{in_flight} always in flight"
            results.append(SteadyResult(load, waited, time.perf_counter() - started, served.slack.posted() - posted))
            wait_for_posts(served.slack, posted + (len(waited) + 1) // 2)  # every diagnosis answers before the next load
    return results


def memory(tables: int, latency_ms: float, checkpoints: tuple[int, ...], in_flight: int) -> dict[int, tuple[float, int]]:
    """Diagnoses answered -> (peak RSS in MiB, threads) of the server, sending /sync-status <table>
    with at most `in_flight` diagnoses running at once."""
    slack = Slack()
    target = Target(slack, tables, latency_ms)
    try:
        found, sent = {}, 0
        for checkpoint in checkpoints:
            while sent < checkpoint:
                room = min(in_flight - (sent - slack.posted()), checkpoint - sent)
                if room <= 0:
                    time.sleep(0.005)
                    continue
                send_at_once(target, [command_body(slack, f"t{(sent + i) % tables:04d}") for i in range(room)])
                sent += room
            wait_for_posts(slack, checkpoint)
            time.sleep(0.5)  # an answer is posted just before its listener returns
            found[checkpoint] = (target.peak_rss_mib(), target.threads())
        return found
    finally:
        target.stop()
        slack.close()


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(len(ordered) * q / 100) - 1)]
