"""Approvals and re-syncs across a Redis failover, with real servers: a primary, a replica and three
sentinels of the machine's `redis-server` (tests/redis_ha.py), the web app over signed HTTP, and real
`syncbot worker` processes against moto's and fakesnow's servers (the stack of
test_resync_processes.py). The primary is killed with SIGKILL between the two approvals, inside a
TRUNCATE and right after ReloadTables; each re-sync ends `succeeded` with one ReloadTables and one
TRUNCATE of each table, and the audit stream on the new primary holds everything recorded before.

The tests find the re-sync's steps by name from its fix module and wait on the request's state, so
they hold however many steps the re-sync has."""
from __future__ import annotations

import threading
import time

import pytest
import redis as redis_lib

from bot import redis_conn
from bot.models import ActionKind
from bot.remediation import audit
from bot.remediation.approvals import Approvals
from bot.remediation.fixes import FIXES
from bot.settings import Settings
from handlers.app import web_client
from redis_ha import RedisHA
from syncbot.sandbox.slack import signed_headers, slash_command_body
from syncbot.server import wsgi_app
from syncbot.wiring import web
from test_resync_processes import ROWS, _task, kill, stack, start_worker  # noqa: F401 - stack is a fixture
from test_server import Quiet, ThreadingServer, click_over_http, post, wait_for

DB = 3
LEASE_S = 15  # longer than a failover and the killed server's return as a replica (about 3 s here)
ALICE, BOB = "U0ALICE01", "U0BOB0002"


@pytest.fixture(scope="module")
def ha(tmp_path_factory):
    cluster = RedisHA(tmp_path_factory.mktemp("redis-ha"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


@pytest.fixture
def redis(ha):
    """Overrides conftest's: the stack is built on the HA primary (its REDIS_URL is then replaced by
    the sentinels' settings below)."""
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()  # the stack's DMS is seeded per test; moto keeps its state per process
    client = ha.primary(DB)
    client.flushdb()
    ha.wait_replicated()
    yield client
    client.close()


@pytest.fixture
def ha_stack(stack, ha, monkeypatch):
    env = {"REDIS_URL": f"redis://127.0.0.1:1/{DB}", "REDIS_SENTINELS": ha.sentinels,
           "REDIS_SENTINEL_MASTER": "mymaster", "SYNCBOT_JOB_LEASE": str(LEASE_S)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    stack["env"].update(env)
    stack["ha"] = ha
    stack["client"] = redis_conn.connect(Settings())  # reaches whichever server is primary
    return stack


class Web:
    """The web process as `syncbot serve` builds it, over HTTP."""

    def __init__(self, stack, slack):
        self.wiring = web(Settings(), web_client("xoxb-test", slack.api_url))
        self.secret, self.slack = stack["env"]["SLACK_SIGNING_SECRET"], slack
        self.server = make_server()(self.wiring)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_port}"

    def ask_resync(self):
        body = slash_command_body("resync orders rows lost overnight", ALICE, "C0INCIDNT", self.slack.response_url())
        assert post(self.base + "/slack/events", body, signed_headers(body, self.secret))[0] == 200
        assert wait_for(lambda: self.slack.of("chat.postMessage"), 20)
        message = self.slack.of("chat.postMessage")[0]
        approve = next(e for b in message.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["text"]["text"] == "Approve")
        return message, approve

    def approve(self, message, button):
        click_over_http(self.base, self.secret, self.slack, button, BOB, message.ts)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def make_server():
    from wsgiref.simple_server import make_server as wsgi_server

    return lambda wiring: wsgi_server("127.0.0.1", 0, wsgi_app(wiring.app, wiring.bot), server_class=ThreadingServer,
                                      handler_class=Quiet)


def ready_worker(stack, name):
    """A `syncbot worker` that has started (recovered what was stranded and started RQ's loop)."""
    proc = start_worker(stack, name)
    log = stack["tmp"] / f"{name}.log"
    assert wait_for(lambda: " starting on " in log.read_text(), 60), log.read_text()[-2000:]
    return proc


def state_of(stack, request_id):
    try:
        found = Approvals(stack["client"]).get(request_id)
    except redis_lib.RedisError:
        return None  # failing over
    return found.state.value if found else "missing"


def answers(slack, since: int) -> list[str]:
    """What clickers were told privately (or through the click's response URL) since call `since`."""
    return [c.params.get("text", "") for c in slack.calls[since:] if c.method in ("chat.postEphemeral", "response_url")]


def audit_now(stack):
    return audit.read(stack["client"], "orders", limit=1000)


def fail_over(ha, *, settled: bool):
    """SIGKILL the primary (after the replica caught up, if `settled`); in the background, the killed
    server comes back as a replica of the new primary once the sentinels promoted one."""
    if settled:
        ha.wait_replicated()
    killed_at = ha.kill_primary()
    times = {}
    thread = threading.Thread(target=lambda: times.update(promoted=ha.after_failover()), daemon=True)
    thread.start()
    return killed_at, thread, times


def finish(stack, request_id, timeout=120):
    assert wait_for(lambda: state_of(stack, request_id) in ("succeeded", "failed"), timeout), \
        (state_of(stack, request_id), [e.detail for e in reversed(audit_now(stack))])
    return Approvals(stack["client"]).get(request_id)


def assert_exactly_once(stack, request, before):
    """One ReloadTables, one TRUNCATE of each table (all before the reload), every step done, in order,
    and every audit entry recorded before the kill still there on the new primary."""
    assert request.state.value == "succeeded", request.outcome
    task, side = _task(stack["task_arn"]), stack["side"]
    assert len(task.reloads) == 1
    steps = FIXES[ActionKind.RESYNC].approved_steps(request.plan_data)
    truncated = [s.name.removeprefix("TRUNCATE TABLE ").upper() for s in steps if s.name.startswith("TRUNCATE")]
    landed = [table for _, table, outcome in side.truncates if outcome == "done"]
    assert sorted(landed) == sorted(truncated), side.truncates
    entries = list(reversed(audit_now(stack)))
    done = [e.detail.removesuffix(": done") for e in entries if e.event == "step" and e.detail.endswith(": done")]
    assert list(dict.fromkeys(done)) == [s.name for s in steps]
    ids = {e.id for e in entries}
    assert all(e.id in ids for e in before), [e for e in before if e.id not in ids]
    assert entries[-1].event == "succeeded" and f"Aurora {ROWS} rows" in request.outcome


# -- a replica that confirms nothing: fail closed -------------------------------------------------------

CHANNEL = "C0INCIDNT"


@pytest.fixture
def on_ha(ha, redis, make_sandbox, slack):
    """The sandbox pipeline's bot on the HA Redis through the sentinels, every transition confirmed by
    one replica within 300 ms (as `serve` and `worker` are wired when REDIS_SENTINELS is set)."""
    from bot.services import assemble
    from syncbot.wiring import wire

    sandbox = make_sandbox("pipe-paused")
    client = redis_conn.connect(Settings(redis_url=f"redis://127.0.0.1:1/{DB}", redis_sentinels=ha.sentinels))
    bot = assemble(sandbox.catalog, sandbox.gateways, client)
    wiring = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret="s", poll_s=0.01,
                  sleep=lambda s: None, follow_timeout_s=10, catchup_timeout_s=10,
                  replication=redis_conn.Replication(1, 300))
    paused = []
    yield sandbox, wiring, lambda: paused.append(ha.pause_replica())
    for port in paused:
        ha.resume_replica(port)


def test_a_replica_that_confirms_nothing_refuses_every_click(on_ha):
    sandbox, wiring, partition = on_ha
    remediation = wiring.remediation
    asked = remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "rows lost overnight")
    assert asked.ok, asked.text
    partition()
    approved = remediation.approve(asked.request.id, BOB)
    assert not approved.ok and approved.text.startswith("Not recorded, try again")
    quick = remediation.request("orders", ActionKind.RESUME_PIPE, ALICE, CHANNEL)
    assert not quick.ok and quick.text.startswith("Not recorded, try again")
    assert sum(len(q) for q in wiring.queues.values()) == 0  # nothing was queued
    assert sandbox.snowflake.statements == []


@pytest.mark.parametrize("failover_wait", [False, True])
def test_a_worker_whose_writes_no_replica_confirms_changes_nothing(on_ha, monkeypatch, failover_wait):
    """The claim was confirmed, then the replica stops confirming: the first fence fails closed (at
    once, or once the lease would have lapsed when the worker rides out failovers), nothing runs."""
    from bot.remediation import jobs

    sandbox, wiring, partition = on_ha
    remediation = wiring.remediation
    asked = remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "rows lost overnight")
    assert remediation.approve(asked.request.id, BOB).ok
    runtime = wiring.runtime
    monkeypatch.setattr(runtime, "failover_wait", failover_wait)
    monkeypatch.setattr(runtime, "lease_s", 1.5)
    real_claim = runtime.approvals.claim

    def claim_then_partition(*args, **kwargs):
        claimed = real_claim(*args, **kwargs)
        partition()
        return claimed

    monkeypatch.setattr(runtime.approvals, "claim", claim_then_partition)
    ended = []
    run = threading.Thread(target=lambda: ended.append(jobs.run_request(runtime, asked.request.id)), daemon=True)
    run.start()
    run.join(5)  # a fence tried again for ever would hold the request past any lease
    assert ended == ["interrupted"]
    assert [s for s in sandbox.snowflake.statements if s.startswith("TRUNCATE")] == []
    assert sandbox.dms_task().reloads == []


def test_a_claim_no_replica_confirms_is_not_acted_on(on_ha):
    """A grant the new primary could lose after a failover is never used: the worker runs nothing."""
    from bot.remediation import jobs

    sandbox, wiring, partition = on_ha
    remediation = wiring.remediation
    asked = remediation.request("orders", ActionKind.RESYNC, ALICE, CHANNEL, "rows lost overnight")
    assert remediation.approve(asked.request.id, BOB).ok
    partition()
    assert jobs.run_request(wiring.runtime, asked.request.id) == "interrupted"
    assert sandbox.snowflake.statements == [] and sandbox.dms_task().reloads == []


# -- the primary killed mid-flow ------------------------------------------------------------------------

def test_a_failover_between_the_two_approvals(ha_stack, slack):
    """The request was confirmed by the replica before the bot posted it; the second approver's clicks
    are refused while Redis fails over ("can't reach" / "not recorded"), never lost, and the first one
    that lands queues the re-sync on the new primary."""
    site = Web(ha_stack, slack)
    worker = None
    try:
        message, approve = site.ask_resync()
        before = audit_now(ha_stack)
        assert [e.event for e in before] == ["requested"]
        worker = ready_worker(ha_stack, "worker")
        killed_at, returning, times = fail_over(ha_stack["ha"], settled=True)
        since, refused = len(slack.calls), []
        deadline = time.monotonic() + 60
        while state_of(ha_stack, approve["value"]) in (None, "requested") and time.monotonic() < deadline:
            clicked = len(slack.calls)
            site.approve(message, approve)  # a person clicking again until it is recorded
            wait_for(lambda: answers(slack, clicked), 5)
            refused += [text for text in answers(slack, clicked) if "queued" not in text]
            time.sleep(0.2)
        accepted_at = time.monotonic()
        print(f"\nfailover: promoted {times.get('promoted', 0) - killed_at:.1f} s after the kill; "
              f"the approval was accepted {accepted_at - killed_at:.1f} s after it, {len(refused)} click(s) refused")
        assert accepted_at - killed_at < 60
        assert all("can't reach" in text or "Not recorded" in text for text in refused), refused
        request = finish(ha_stack, approve["value"])
        returning.join(30)
        assert_exactly_once(ha_stack, request, before)
    finally:
        if worker is not None and worker.poll() is None:
            kill(worker)
        site.close()


def test_a_failover_inside_the_truncate(ha_stack, slack):
    """The primary dies while a TRUNCATE runs in Snowflake: the worker keeps its lease (confirmed on
    the replica that takes over) and checkpoints the TRUNCATE on the new primary; nothing runs twice."""
    site = Web(ha_stack, slack)
    worker = None
    side = ha_stack["side"]
    try:
        message, approve = site.ask_resync()
        side.slow_truncate_s = 2  # long enough to fail over under it, well inside its statement timeout
        site.approve(message, approve)
        worker = ready_worker(ha_stack, "worker")
        assert wait_for(lambda: side.arrived, 60)
        before = audit_now(ha_stack)
        assert before[0].detail.startswith("TRUNCATE TABLE") and before[0].detail.endswith(": started")
        killed_at, returning, _ = fail_over(ha_stack["ha"], settled=True)
        side.slow_truncate_s = 0
        request = finish(ha_stack, approve["value"])
        returning.join(30)
        assert_exactly_once(ha_stack, request, before)
        assert time.monotonic() - killed_at < 120
    finally:
        side.slow_truncate_s = 0
        if worker is not None and worker.poll() is None:
            kill(worker)
        site.close()


def test_a_failover_right_after_reload_tables(ha_stack, slack):
    """ReloadTables reached DMS; the primary dies before or as its checkpoint is written. The reload
    step's intent was confirmed before the call, so on the new primary the worker (or its successor)
    asks DMS and never calls it again, and no TRUNCATE runs after it."""
    site = Web(ha_stack, slack)
    worker = None
    task = _task(ha_stack["task_arn"])
    try:
        message, approve = site.ask_resync()
        site.approve(message, approve)
        worker = ready_worker(ha_stack, "worker")
        assert wait_for(lambda: len(task.reloads) == 1, 90)
        reload_at = time.time()
        before = audit_now(ha_stack)  # each entry's write was confirmed before the worker went on
        _, returning, _ = fail_over(ha_stack["ha"], settled=False)
        request = finish(ha_stack, approve["value"])
        returning.join(30)
        assert_exactly_once(ha_stack, request, before)
        assert all(at < reload_at for at, _, outcome in ha_stack["side"].truncates if outcome == "done")
    finally:
        if worker is not None and worker.poll() is None:
            kill(worker)
        site.close()


def test_doctor_and_readyz_show_the_primary_found_and_its_replicas(on_ha, ha):
    from bot.doctor import Backends, Status, _replicas
    from test_server import get

    _, wiring, _ = on_ha
    bot = wiring.bot
    line = _replicas(Backends(dms=None, s3=None, iam=None, aurora=None, snowflake=None, redis=bot.redis), 1)
    primary, replica = f"127.0.0.1:{ha.primary_port()}", f"127.0.0.1:{ha.replica_port()}"
    assert line.status is Status.OK and primary in line.detail and "Sentinel" in line.detail and replica in line.detail
    server = make_server()(wiring)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        status, body = get(f"http://127.0.0.1:{server.server_port}/readyz")
    finally:
        server.shutdown()
        server.server_close()
    assert status == 200 and body["redis"] == {"primary": primary, "replicas": [replica], "sentinel": True}
    assert not [w for w in body["warnings"] if "no replica" in w]
    gone = ha.kill_replica()
    try:
        assert wait_for(lambda: [w for w in bot.warnings() if f"Redis primary {primary} has no replica online" in w])
        assert _replicas(Backends(dms=None, s3=None, iam=None, aurora=None, snowflake=None, redis=bot.redis),
                         1).status is Status.FAILING
    finally:
        ha.restart_replica(gone)
