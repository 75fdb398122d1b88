"""Acknowledgements do not wait for diagnoses: over real HTTP (the production WSGI app under waitress),
with signed requests, while every diagnosis is held at a backend that does not answer."""
import secrets
import threading
import time
import urllib.error
import urllib.request

import waitress

from bot.services import assemble
from bot.gateways import Gateways
from handlers.acks import AcksFirst
from handlers.app import web_client
from syncbot.sandbox.slack import signed_headers, slash_command_body
from syncbot.server import wsgi_app
from syncbot.wiring import wire


class Held:
    """A gateway whose every call waits until the test lets it through."""

    def __init__(self, inner, gate):
        self._inner, self._gate = inner, gate

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            self._gate.wait(30)
            return attr(*args, **kwargs)

        return call


def post(base, body, secret):
    request = urllib.request.Request(base + "/slack/events", data=body.encode(), headers=signed_headers(body, secret))
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_more_commands_than_bolts_default_threads_are_all_acknowledged_while_diagnoses_wait(make_sandbox, redis,
                                                                                          slack):
    sandbox = make_sandbox("healthy", real_aurora=False)
    gate = threading.Event()
    gw = sandbox.gateways
    held = Gateways(gw.dms, gw.s3, Held(gw.snowflake, gate), gw.aurora)
    secret = secrets.token_hex(16)
    wiring = wire(assemble(sandbox.catalog, held, redis, timeout=30),
                  client=web_client("xoxb-test", slack.api_url), signing_secret=secret)
    bot, app = wiring.bot, wiring.app
    server = waitress.create_server(wsgi_app(app, bot), host="127.0.0.1", port=0, threads=16)
    threading.Thread(target=server.run, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.effective_port}"
        answers = []
        bodies = [slash_command_body(table, "U0ALICE01", "C0INCIDNT", slack.response_url())
                  for table in ("orders", "customers", "payments") * 4]
        senders = [threading.Thread(target=lambda b=b: answers.append(post(base, b, secret))) for b in bodies]
        for sender in senders:
            sender.start()
        for sender in senders:
            sender.join()
        # Twelve listeners hold their threads (Bolt's default pool has 5): every one was acknowledged.
        assert [status for status, _ in answers] == [200] * 12
        assert all("Running the runbook checks" in text for _, text in answers)
        assert not slack.of("chat.postMessage")  # the diagnoses are still waiting for Snowflake
        gate.set()
        for _ in range(200):
            if len(slack.of("chat.postMessage")) == 12:
                break
            time.sleep(0.05)
        assert len(slack.of("chat.postMessage")) == 12
    finally:
        gate.set()
        server.close()


def test_listener_pool_starts_a_thread_when_every_warm_one_is_busy():
    acks = AcksFirst(threads=2)
    release = threading.Event()
    running = []
    futures = [acks.executor.submit(lambda n=n: (running.append(n), release.wait(10))) for n in range(5)]
    for _ in range(100):
        if len(running) == 5:
            break
        time.sleep(0.01)
    assert sorted(running) == [0, 1, 2, 3, 4]  # none queued behind the two warm threads
    release.set()
    assert all(f.result(timeout=10)[1] for f in futures)


def test_a_listener_that_acknowledged_waits_for_the_burst_to_be_acknowledged():
    acks = AcksFirst(quiet_s=0.05, max_wait_s=5)
    order = []
    first = acks.arrived({})  # a request arrives; its ack is still to come
    second = acks.arrived({})  # and another

    def listener(ack, name):
        ack()
        order.append(name)  # the work after the ack

    t1 = threading.Thread(target=listener, args=(first, "first"))
    t1.start()
    time.sleep(0.2)
    assert order == []  # acknowledged, but the second request still awaits its ack
    t2 = threading.Thread(target=listener, args=(second, "second"))
    t2.start()
    t1.join(5)
    t2.join(5)
    assert sorted(order) == ["first", "second"] and first.wait(0) and second.wait(0)


def test_under_steady_load_held_work_goes_oldest_first_once_more_than_max_held_wait():
    acks = AcksFirst(quiet_s=0.05, max_wait_s=5, max_held=2)
    pending = acks.arrived({})  # a request whose ack never comes while the test runs: no quiet moment
    done = []

    def work(name):
        acks.after_burst()
        done.append(name)

    workers = []
    for name in ("first", "second", "third"):
        workers.append(threading.Thread(target=work, args=(name,)))
        workers[-1].start()
        time.sleep(0.1)
    assert done == ["first"]  # the third to wait let the oldest go; two are still held
    acks.acked(pending, on_request_thread=True)  # the last ack is given: a quiet moment follows
    for worker in workers:
        worker.join(5)
    assert sorted(done) == ["first", "second", "third"]


def test_work_after_a_quiet_moment_does_not_wait():
    acks = AcksFirst(quiet_s=0.05, max_wait_s=5)
    acks.acked(acks.arrived({}), on_request_thread=True)
    time.sleep(0.2)  # no request for longer than quiet_s: the burst is over
    started = time.monotonic()
    acks.after_burst()
    assert time.monotonic() - started < 1  # not the 5 s it would wait during a burst
