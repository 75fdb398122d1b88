"""Measurements against `syncbot serve` in its own process, over real HTTP with signed requests:
acknowledgement latency under bursts, and peak memory over many diagnoses.

Three processes share the machine: the server (bench.target), the Slack stand-in it posts answers to
(syncbot.fakeslack.FakeSlack, in a child process), and this one, which sends requests from a single
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from syncbot.fakeslack import FakeSlack, block_actions_body, signed_headers, slash_command_body

CHANNEL = "C0BENCH01"
USER = "U0BENCH01"  # not an approver: a click is answered (politely refused) and changes nothing
NEVER = float("inf")  # an answer that is not 200: Bolt gave up waiting for ack() (3 s) and said 404


class Slack:
    """FakeSlack in a child process, asked over a pipe what reached it."""

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
    slack = FakeSlack()
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
            conn.send(next(([e for b in m.params.get("blocks", []) if b["type"] == "actions" for e in b["elements"]],
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


def send_at_once(target: Target, bodies: list[str]) -> list[float]:
    """Sends every body at the same instant, each signed, on its own connection (as Slack does), and
    returns the seconds each waited for its answer (NEVER if it was not a 200)."""
    wire = [_http_request(target, body) for body in bodies]
    sel = selectors.DefaultSelector()
    started, got, done = {}, {}, {}
    for i, data in enumerate(wire):
        sock = socket.socket()
        sock.setblocking(False)
        started[i] = time.perf_counter()
        sock.connect_ex(("127.0.0.1", target.port))
        sel.register(sock, selectors.EVENT_WRITE, (i, data))
        got[i] = b""
    while len(done) < len(wire):
        ready = sel.select(timeout=30)
        if not ready:
            raise RuntimeError(f"{len(wire) - len(done)} requests had no answer after 30 s")
        for key, events in ready:
            i, data = key.data
            sock = key.fileobj
            if events & selectors.EVENT_WRITE:
                sock.sendall(data)
                sel.modify(sock, selectors.EVENT_READ, (i, data))
                continue
            chunk = sock.recv(65536)
            got[i] += chunk
            if not chunk or _complete(got[i]):
                done[i] = time.perf_counter() - started[i] if got[i].startswith(b"HTTP/1.1 200") else NEVER
                sel.unregister(sock)
                sock.close()
    return [done[i] for i in range(len(wire))]


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


def ack_bursts(tables: int, latency_ms: float, slow_snowflake_ms: float, bursts: int, size: int,
               pause_s: float, pinned: bool) -> AckResult:
    """`bursts` times, `size` signed requests at the same instant (half /sync-status <table>, half clicks
    on a real fix button), while Snowflake takes `slow_snowflake_ms` a statement, so that every
    diagnosis the bursts start is still running. One more burst first, not counted: the server's
    threads are up, as in a server that has been running for a while. `pinned`: the server on one CPU,
    this process and the Slack stand-in on the others."""
    slack = Slack()
    target = Target(slack, tables, latency_ms, slow_snowflake_ms)
    everywhere = os.sched_getaffinity(0)
    if pinned and len(everywhere) > 1:
        server_cpu = min(everywhere)
        os.sched_setaffinity(target.proc.pid, {server_cpu})
        for pid in (0, slack.pid):
            os.sched_setaffinity(pid, everywhere - {server_cpu})
    try:
        send_at_once(target, [command_body(slack, "t0003")])  # a paused pipe: its answer has buttons
        wait_for_posts(slack, 1)
        buttons, ts = slack.fix_buttons()
        target.proc.send_signal(signal.SIGUSR1)  # from now on Snowflake is slow
        result, commands_sent = AckResult([], [], 0), 1
        for burst in range(bursts + 1):
            result.running_max = max(result.running_max, commands_sent - slack.posted())
            kinds = ["click" if i % 2 else "command" for i in range(size)]
            bodies = [click_body(slack, buttons[i % len(buttons)], ts) if kind == "click"
                      else command_body(slack, f"t{(burst * size + i) % tables:04d}") for i, kind in enumerate(kinds)]
            answered = send_at_once(target, bodies)
            if burst:
                for kind, seconds in zip(kinds, answered):
                    (result.clicks if kind == "click" else result.commands).append(seconds)
            commands_sent += kinds.count("command")
            time.sleep(pause_s)
        result.answered_during = slack.posted() - 1
        return result
    finally:
        os.sched_setaffinity(0, everywhere)
        target.stop()
        slack.close()


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
