"""A real `syncbot serve` in Socket Mode (SLACK_APP_TOKEN set), against a local Socket Mode endpoint
(tests/fake_socket_mode.py) and test_resync_processes's backends: /healthz and /readyz on --port as in
HTTP mode, /readyz 503 while the WebSocket is down and reconnecting, and on SIGTERM 503 at once, a
clean close of the connection (a close frame, no reconnect), the acknowledged diagnosis still posted,
exit 0."""
from __future__ import annotations

import os
import signal
import time

import pytest

from fake_socket_mode import FakeSocketMode
from process_stack import clean_dms  # noqa: F401 - a fixture
from test_resync_processes import kill, stack  # noqa: F401 - `stack` is the fixture
from test_serve_shutdown import DRAIN_S, Gate, get, port_of, start_serve
from test_server import wait_for


@pytest.fixture
def socket_mode(slack):
    fake = FakeSocketMode()
    answer = slack.answer

    def answer_with_url(method, params):  # apps.connections.open hands out the WebSocket URL
        return {"ok": True, "url": fake.url} if method == "apps.connections.open" else answer(method, params)

    slack.answer = answer_with_url
    yield fake
    fake.close()


def slash_command_envelope(slack, envelope_id="env-1"):
    return {"envelope_id": envelope_id, "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"token": "legacy-unused", "team_id": "T0SANDBOX", "team_domain": "sandbox",
                        "channel_id": "C0INCIDNT", "channel_name": "incident", "user_id": "U0ALICE01",
                        "user_name": "alice", "command": "/sync-status", "text": "orders",
                        "api_app_id": "A0SYNCBOT", "response_url": slack.response_url(),
                        "trigger_id": f"{int(time.time())}.1.sock"}}


def test_socket_mode_probes_and_a_clean_shutdown(clean_dms, stack, socket_mode, slack, monkeypatch):
    gate = Gate(monkeypatch)
    proc, log_path = start_serve(stack, {"SLACK_APP_TOKEN": "xapp-1-A0SYNCBOT-1-test"})
    try:
        base = f"http://127.0.0.1:{port_of(log_path, proc)}"
        assert get(base + "/healthz") == (200, {"status": "ok"})
        assert wait_for(lambda: get(base + "/readyz")[0] == 200, 30), get(base + "/readyz")

        socket_mode.hold()  # the reconnect waits in its handshake
        socket_mode.refresh()
        assert wait_for(lambda: get(base + "/readyz")[0] == 503, 5)
        status, body = get(base + "/readyz")
        assert body["dependencies"]["slack_socket_mode"].startswith("down") and body["dependencies"]["redis"] == "ok"
        socket_mode.release()
        assert wait_for(lambda: get(base + "/readyz")[0] == 200, 30), get(base + "/readyz")
        connections = socket_mode.connections

        gate.closed = True
        socket_mode.send(slash_command_envelope(slack))
        assert wait_for(lambda: any(m.get("envelope_id") == "env-1" for m in socket_mode.received), 10)
        assert gate.waiting.wait(20), "the diagnosis never reached Snowflake"

        os.kill(proc.pid, signal.SIGTERM)
        assert wait_for(lambda: get(base + "/readyz")[0] == 503, DRAIN_S / 2)  # at once, not after the drain
        status, body = get(base + "/readyz")
        assert status == 503 and body["dependencies"]["shutdown"].startswith("in progress")
        assert wait_for(lambda: socket_mode.close_codes == [1000], 10)  # closed cleanly, after the drain
        assert not socket_mode.connected() and proc.poll() is None  # the acknowledged diagnosis still runs
        gate.opened.set()
        assert proc.wait(timeout=30) == 0
        assert socket_mode.connections == connections  # no reconnect after the close
        assert [c for c in slack.of("chat.postMessage") if "orders" in c.params.get("text", "")]
    finally:
        gate.opened.set()
        if proc.poll() is None:
            kill(proc)
