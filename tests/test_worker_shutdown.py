"""A rolling deploy of `syncbot worker`: SIGTERM to the worker running a re-sync, with its replacement
already running. The stopping worker lets its step finish, makes no new change, gives its lease back and
exits 0; the other takes the request over at once (not a lease later) and the re-sync completes with
every step exactly once. Real processes over the stack of test_resync_processes (moto's and fakesnow's
servers, the machine's PostgreSQL and Redis, a local Slack), logging JSON: one re-sync's records,
filtered by its request id, tell every step in order, from the click in the web process to the last
step in the second worker.

Nothing here counts the re-sync's steps or knows their timing: the steps are the request's own
(FIXES[...].approved_steps of its stored plan), and every wait is on state, with a deadline."""
from __future__ import annotations

import io
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from pythonjsonlogger.json import JsonFormatter

from bot import logs
from bot.redaction import RedactingFilter
from bot.remediation import audit
from bot.remediation.fixes import FIXES
from bot.settings import Settings
from handlers.app import web_client
from syncbot.sandbox.slack import signed_headers, slash_command_body
from syncbot.server import wsgi_app
from syncbot.wiring import web
from process_stack import clean_dms  # noqa: F401 - a fixture
from test_resync_processes import _task, kill, stack  # noqa: F401 - `stack` is the fixture
from test_server import Quiet, ThreadingServer, click_over_http, post, wait_for

LEASE_S = 10  # long enough that a takeover by lease lapse could not pass for a handover


def start_worker(stack, name, *extra):
    log = open(stack["tmp"] / f"{name}.log", "w")
    env = {**stack["env"], "SYNCBOT_JOB_LEASE": str(LEASE_S), "SYNCBOT_LOG_FORMAT": "json"}
    return subprocess.Popen([sys.executable, "-m", "syncbot.cli", "worker", *extra], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)


def json_lines(path: Path) -> list[dict]:
    found = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


def logged(stack, name, text) -> bool:
    path = stack["tmp"] / f"{name}.log"
    return path.exists() and any(text in r.get("message", "") for r in json_lines(path))


def metrics_of(port: int) -> dict[tuple[str, tuple], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def web_json_log():
    """The web process's records as `syncbot serve` writes them with SYNCBOT_LOG_FORMAT=json."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    handler.addFilter(logs.CorrelationFilter())
    handler.addFilter(RedactingFilter())
    return handler, out


def test_sigterm_hands_a_running_resync_to_the_other_worker_at_once(clean_dms, stack, redis, slack):
    wiring = web(Settings(), web_client("xoxb-test", slack.api_url))
    secret, side, task = stack["env"]["SLACK_SIGNING_SECRET"], stack["side"], _task(stack["task_arn"])
    server = make_server(wiring)
    base = f"http://127.0.0.1:{server.server_port}"
    handler, web_out = web_json_log()
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    workers = {name: start_worker(stack, name, "--metrics-port", "0", "--metrics-host", "127.0.0.1") for name in ("blue", "green")}
    try:
        assert wait_for(lambda: all(logged(stack, n, "starting on") for n in workers), 60)
        body = slash_command_body("resync orders rows lost overnight", "U0ALICE01", "C0INCIDNT", slack.response_url())
        assert post(base + "/slack/events", body, signed_headers(body, secret))[0] == 200
        assert wait_for(lambda: slack.of("chat.postMessage"), 20)
        message = slack.of("chat.postMessage")[0]
        approve = next(e for b in message.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["text"]["text"] == "Approve")
        request_id = approve["value"]
        side.slow_truncate_s = 2.0  # under its statement timeout (2/3 of the lease): it finishes
        click_over_http(base, secret, slack, approve, "U0BOB0002", message.ts)

        assert wait_for(lambda: side.arrived, 60), "no TRUNCATE reached Snowflake"
        holder = wiring.approvals.get(request_id).extra["worker"]
        first = next(n for n, p in workers.items() if holder.startswith(f"worker-{p.pid}-"))
        other = next(n for n in workers if n != first)
        os.kill(workers[first].pid, signal.SIGTERM)  # inside the first TRUNCATE
        assert workers[first].wait(timeout=30) == 0
        exited_at = time.time()

        entries = lambda: list(reversed(audit.read(redis, "orders")))  # noqa: E731
        assert wait_for(lambda: any(e.event == "resumed" for e in entries()), 10)
        resumed = next(e for e in entries() if e.event == "resumed")
        assert resumed.at - exited_at < 2.0, "taken over a lease later, not handed over"
        assert resumed.user.startswith(f"worker-{workers[other].pid}-")
        assert "handed it over" in resumed.detail
        handed = [e for e in entries() if e.event == "handed over"]
        assert len(handed) == 1 and handed[0].user == holder

        state = lambda: wiring.approvals.get(request_id).state.value  # noqa: E731
        assert wait_for(lambda: state() in ("succeeded", "failed"), 120), [e.detail for e in entries()]
        done = wiring.approvals.get(request_id)
        assert done.state.value == "succeeded", done.outcome
        assert len(task.reloads) == 1
        landed = [t for _, t, outcome in side.truncates if outcome == "done"]
        assert sorted(landed) == sorted(set(landed)) and len(landed) == 2  # one TRUNCATE each
        # The stopping worker finished the step it was in and started none after it.
        steps = [s.name for s in FIXES[done.action].approved_steps(done.plan_data)]
        by_first = [e for e in entries() if e.event == "step" and e.user == holder]
        started = [e.detail.rsplit(": ", 1)[0] for e in by_first if e.detail.endswith(": started")]
        finished = [e.detail.rsplit(": ", 1)[0] for e in by_first if e.detail.endswith(": done")]
        assert started == finished and started[-1].startswith("TRUNCATE")

        # The story of this re-sync, from every process's JSON log, filtered by its request id.
        records = [json.loads(line) for line in web_out.getvalue().splitlines()]
        for name in workers:
            records += json_lines(stack["tmp"] / f"{name}.log")
        story = sorted((r for r in records if r.get("request_id") == request_id), key=lambda r: r["time"])
        said = [r["message"] for r in story]
        assert any(m.endswith(": requested") for m in said) and any(m.endswith(": approved") for m in said)
        web_said = [r for r in story if r["logger"].startswith("bot.remediation.approvals")
                    and r["message"].endswith(": approved")]
        assert web_said and web_said[0].get("slack_request")  # the click that approved it
        dones = [r for r in story if re.match(r"step .*: done", r["message"])]
        assert [r["step"] for r in dones] == steps  # every step once, in order, across both workers
        assert all(r.get("rq_job") and r.get("table") == "orders" and r.get("dms_task") == stack["task_arn"]
                   for r in dones)
        assert said[-1].endswith(": succeeded") or any(m.endswith(": succeeded") for m in said[-3:])

        # The other worker's /metrics: the takeover and the fix's end are counted.
        port = int(next(r["message"].rsplit(" ", 1)[-1] for r in json_lines(stack["tmp"] / f"{other}.log")
                        if r["message"].startswith("serving GET /metrics")))
        seen = metrics_of(port)
        assert seen[("syncbot_lease_takeovers_total", ())] >= 1
        assert seen[("syncbot_fixes_total", (("kind", "resync"), ("outcome", "succeeded")))] == 1
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        for proc in workers.values():
            if proc.poll() is None:
                kill(proc)
        server.shutdown()
        server.server_close()


def make_server(wiring):
    from wsgiref.simple_server import make_server as wsgiref_server

    server = wsgiref_server("127.0.0.1", 0, wsgi_app(wiring.app, wiring.bot), server_class=ThreadingServer,
                            handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
