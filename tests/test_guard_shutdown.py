"""The shutdown guards in one process, fast (the real processes are in test_worker_shutdown.py and
test_serve_shutdown.py): a stopping worker starts no change and hands the request over with its lease
lapsed at once, a wait between polls ends at once, and the probes say a shutdown or a lost Socket
Mode connection."""
from __future__ import annotations

import threading
import time
import urllib.request
from wsgiref.simple_server import make_server

import pytest

from bot.remediation import audit, jobs
from bot.remediation.fixes import FIXES
from bot.remediation.runtime import Lease, Stopping
from syncbot.server import Lifecycle, wsgi_app
from test_guard_jobs import approved_resync, reloads, request, truncates, worker
from test_server import Quiet, ThreadingServer, get


def test_a_stopping_worker_finishes_its_step_changes_nothing_more_and_hands_over(harness, monkeypatch):
    h = harness("stalled")
    request_id = approved_resync(h)
    rt = worker(h, lease_s=30)
    real_truncate = h.sandbox.snowflake.truncate

    def truncate(table, timeout_s=None):  # SIGTERM arrives while the first TRUNCATE runs
        rt.stopping.set()
        real_truncate(table, timeout_s=timeout_s)

    monkeypatch.setattr(h.sandbox.snowflake, "truncate", truncate)
    queued = []
    rt.enqueue = queued.append
    assert jobs.run_request(rt, request_id) == "handed-over"
    assert len(truncates(h)) == 1 and reloads(h) == []  # the step finished; no other started
    handed = request(h, request_id)
    assert handed.state.value == "running" and [r.id for r in queued] == [request_id]
    assert float(h.redis.hget(f"syncbot:req:{request_id}", "lease_until")) < time.time()  # lapsed now
    monkeypatch.setattr(h.sandbox.snowflake, "truncate", real_truncate)
    assert jobs.run_request(worker(h), request_id) == "succeeded"  # taken over without waiting a lease
    assert sorted(truncates(h)) == sorted(set(truncates(h))) and len(reloads(h)) == 1
    events = [e.event for e in reversed(audit.read(h.redis, "orders"))]
    assert events.count("handed over") == 1 and events.count("resumed") == 1


def test_a_stopping_worker_starts_no_step_after_the_one_it_finished(harness, monkeypatch):
    """Even a step that changes nothing (following DMS) is left to the next worker."""
    h = harness("stalled")
    request_id = approved_resync(h)
    rt = worker(h, lease_s=30)
    client = h.sandbox.dms_client
    real_reload = client.reload_tables

    def reload_tables(**kwargs):
        rt.stopping.set()
        return real_reload(**kwargs)

    monkeypatch.setattr(client, "reload_tables", reload_tables)
    assert jobs.run_request(rt, request_id) == "handed-over"
    stored = request(h, request_id)
    names = [s.name for s in FIXES[stored.action].approved_steps(stored.plan_data)]
    reload_step = next(i for i, name in enumerate(names) if "ReloadTables" in name)
    started = [e.detail for e in audit.read(h.redis, "orders") if e.event == "step" and e.detail.endswith(": started")]
    assert f"{names[reload_step]}: started" in started
    assert not [d for d in started if any(d == f"{later}: started" for later in names[reload_step + 1:])]
    assert stored.step_done == reload_step and len(reloads(h)) == 1


def test_the_fence_refuses_a_change_once_stopping_but_still_renews_the_lease(harness):
    h = harness("stalled")
    request_id = approved_resync(h)
    rt = worker(h)
    claim = rt.approvals.claim(request_id, "orders", rt.worker_id, rt.lease_s, rt.lock_ttl_s)
    rt.stopping.set()
    lease = Lease(rt, rt.approvals.get(request_id), claim.token)
    with pytest.raises(Stopping):
        lease.fence("TRUNCATE TABLE STAGING.ORDERS_CDC: attempt 2", changes=True)
    assert lease.fence() > 0  # the heartbeat's fence: no change, still fine


def test_a_wait_between_polls_ends_as_soon_as_the_worker_stops(harness):
    rt = worker(harness("stalled"), sleep=None)
    threading.Timer(0.2, rt.stopping.set).start()
    begun = time.monotonic()
    with pytest.raises(Stopping):
        rt.pause(30)
    assert time.monotonic() - begun < 5


@pytest.fixture
def probe(harness):
    servers = []

    def start(life):
        h = harness("healthy")
        server = make_server("127.0.0.1", 0, wsgi_app(None, h.bot, life), server_class=ThreadingServer,
                             handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_readyz_says_a_shutdown_began_and_a_socket_mode_connection_is_down(probe):
    connected = {"up": True}
    life = Lifecycle(connected=lambda: connected["up"])
    base = probe(life)
    status, body = get(base + "/readyz")
    assert status == 200 and body["dependencies"] == {"redis": "ok", "slack_socket_mode": "ok"}
    connected["up"] = False
    status, body = get(base + "/readyz")
    assert status == 503 and body["dependencies"]["slack_socket_mode"].startswith("down")
    connected["up"] = True
    life.stopping.set()
    status, body = get(base + "/readyz")
    assert status == 503 and body["dependencies"]["shutdown"].startswith("in progress")
    assert get(base + "/healthz") == (200, {"status": "ok"})  # alive: only not ready
    with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
        assert resp.status == 200 and b"syncbot_approvals_total" in resp.read()
    assert get(base + "/slack/events")[0] == 404  # Socket Mode's probe port serves no Slack requests
