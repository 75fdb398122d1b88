"""A deploy's SIGTERM to a real `syncbot serve` process with a diagnosis in flight: /readyz turns 503 at
once (the load balancer drains this replica), the diagnosis that was acknowledged is still posted, and
the process exits 0 within its bound. HTTP mode here; Socket Mode in test_socket_mode_probes.py.
The backends are test_resync_processes's stack; Snowflake holds the diagnosis's statements at a gate."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest

from syncbot.sandbox.slack import signed_headers, slash_command_body
from process_stack import clean_dms  # noqa: F401 - a fixture
from test_resync_processes import kill, stack  # noqa: F401 - `stack` is the fixture
from test_server import post, wait_for

DRAIN_S = 1.0


class Gate:
    """Snowflake statements wait here while closed: a diagnosis stays in flight until the test opens it."""

    def __init__(self, monkeypatch):
        from fakesnow.cursor import FakeSnowflakeCursor

        self.closed, self.waiting, self.opened = False, threading.Event(), threading.Event()
        original, gate = FakeSnowflakeCursor.execute, self

        def execute(cursor, command, *args, **kwargs):
            if gate.closed and command.lstrip().upper().startswith(("SELECT", "SHOW")):
                gate.waiting.set()
                gate.opened.wait(20)
            return original(cursor, command, *args, **kwargs)

        monkeypatch.setattr(FakeSnowflakeCursor, "execute", execute)


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())
    except OSError:
        return None, None


def start_serve(stack, extra_env=None):
    log = open(stack["tmp"] / "serve.log", "w")
    env = {**stack["env"], "SYNCBOT_DRAIN_SECONDS": str(DRAIN_S), "SYNCBOT_SHUTDOWN_SECONDS": "20",
           "SYNCBOT_LOG_FORMAT": "json", **(extra_env or {})}
    proc = subprocess.Popen([sys.executable, "-m", "syncbot.cli", "serve", "--host", "127.0.0.1", "--port", "0"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    return proc, stack["tmp"] / "serve.log"


def port_of(log_path, proc) -> int:
    def found():
        for line in log_path.read_text().splitlines():
            if line.startswith("{") and " on 127.0.0.1:" in (message := json.loads(line)["message"]):
                return int(message.rsplit(":", 1)[1])
        return None
    assert wait_for(lambda: found() is not None or proc.poll() is not None, 60), log_path.read_text()
    assert proc.poll() is None, log_path.read_text()
    return found()


@pytest.fixture
def gate(clean_dms, stack, monkeypatch):
    return Gate(monkeypatch)


def test_sigterm_drains_then_posts_the_diagnosis_in_flight_and_exits_0(clean_dms, stack, gate, slack):
    proc, log_path = start_serve(stack)
    try:
        base = f"http://127.0.0.1:{port_of(log_path, proc)}"
        assert wait_for(lambda: get(base + "/readyz")[0] == 200, 20), get(base + "/readyz")
        gate.closed = True
        body = slash_command_body("orders", "U0ALICE01", "C0INCIDNT", slack.response_url())
        status, ack = post(base + "/slack/events", body, signed_headers(body, stack["env"]["SLACK_SIGNING_SECRET"]))
        assert status == 200 and "Running the runbook checks" in ack
        assert gate.waiting.wait(20), "the diagnosis never reached Snowflake"

        os.kill(proc.pid, signal.SIGTERM)
        signalled = time.monotonic()
        assert wait_for(lambda: get(base + "/readyz")[0] == 503, DRAIN_S / 2)
        status, ready = get(base + "/readyz")
        assert status == 503 and ready["dependencies"]["shutdown"].startswith("in progress")
        assert time.monotonic() - signalled < DRAIN_S  # 503 while still serving: the balancer drains first
        assert get(base + "/healthz")[0] == 200  # alive, only not ready
        time.sleep(DRAIN_S + 0.5)
        assert get(base + "/healthz")[0] is None  # past the drain: no new connection is accepted
        assert proc.poll() is None  # the acknowledged diagnosis still holds the process
        assert not [c for c in slack.of("chat.postMessage") if "orders" in c.params.get("text", "")]

        gate.opened.set()
        assert proc.wait(timeout=30) == 0
        posted = [c for c in slack.of("chat.postMessage") if "orders" in c.params.get("text", "")]
        assert posted, [c.method for c in slack.calls]
    finally:
        gate.opened.set()
        if proc.poll() is None:
            kill(proc)
