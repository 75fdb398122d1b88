"""`syncbot serve`'s HTTP surface over real HTTP: probes and a signed slash command."""
import json
import secrets
import threading
import urllib.error
import urllib.request

import pytest
import redis as redis_lib
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from bot.services import assemble
from handlers.app import web_client
from syncbot.sandbox.slack import signed_headers, slash_command_body, view_submission_body
from syncbot.server import wsgi_app
from syncbot.wiring import wire


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(make_sandbox, slack):
    servers = []

    def start(redis_client):
        sandbox = make_sandbox("pipe-paused")
        bot = assemble(sandbox.catalog, sandbox.gateways, redis_client)
        secret = secrets.token_hex(16)
        app = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret=secret).app
        server = make_server("127.0.0.1", 0, wsgi_app(app, bot), server_class=ThreadingServer, handler_class=Quiet)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", secret

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def test_probes(serve, redis):
    base, _ = serve(redis)
    assert get(base + "/healthz") == (200, {"status": "ok"})
    status, body = get(base + "/readyz")
    assert (status, body["ready"], body["dependencies"]) == (200, True, {"redis": "ok"})
    # The machine's Redis keeps no append-only file: ready, with the warning an operator must see.
    assert [w for w in body["warnings"] if "persistence (appendonly) is off" in w]


def test_readyz_fails_when_redis_is_down(serve):
    base, _ = serve(redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5))
    status, body = get(base + "/readyz")
    assert status == 503 and body["ready"] is False and body["dependencies"]["redis"].startswith("down")
    assert get(base + "/healthz")[0] == 200


def post(url, body, headers):
    req = urllib.request.Request(url, data=body.encode(), headers=headers, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_signed_command_over_http_posts_the_diagnosis(serve, redis, slack):
    base, secret = serve(redis)
    body = slash_command_body("orders", "U0ALICE01", "C0INCIDNT", slack.response_url())
    status, ack = post(base + "/slack/events", body, signed_headers(body, secret))
    assert status == 200 and "Running the runbook checks" in ack
    for _ in range(100):  # the listener runs after the ack, on Bolt's thread pool
        if slack.of("chat.postMessage"):
            break
        threading.Event().wait(0.1)
    [message] = slack.of("chat.postMessage")
    assert message.params["blocks"][0]["text"]["text"] == "orders: Sync Lagging / Data Missing"


def test_forged_request_over_http_is_refused(serve, redis, slack):
    base, _ = serve(redis)
    body = slash_command_body("orders", "U0ALICE01", "C0INCIDNT", slack.response_url())
    status, _ = post(base + "/slack/events", body, signed_headers(body, "wrong-secret"))
    assert status == 401 and not slack.of("chat.postMessage")


def wait_for(predicate, seconds=10.0):
    for _ in range(int(seconds * 20)):
        if predicate():
            return True
        threading.Event().wait(0.05)
    return False


def click_over_http(base, secret, slack, button, user, message_ts):
    from syncbot.sandbox.slack import block_actions_body

    action = {"action_id": button["action_id"], "block_id": "b", "value": button["value"], "text": button["text"]}
    body = block_actions_body(action, user, "C0INCIDNT", message_ts, slack.response_url())
    status, _ = post(base + "/slack/events", body, signed_headers(body, secret))
    assert status == 200


def test_two_person_resync_over_signed_http(make_sandbox, slack, redis):
    """The issue's path end to end: command, request and approval as signed HTTP requests, the
    re-sync run by RQ's worker."""
    sandbox = make_sandbox("stalled")
    bot = assemble(sandbox.catalog, sandbox.gateways, redis)
    secret = secrets.token_hex(16)
    wiring = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret=secret, poll_s=0,
                  sleep=lambda s: None)
    server = make_server("127.0.0.1", 0, wsgi_app(wiring.app, bot), server_class=ThreadingServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        body = slash_command_body("orders", "U0ALICE01", "C0INCIDNT", slack.response_url())
        assert post(base + "/slack/events", body, signed_headers(body, secret))[0] == 200
        assert wait_for(lambda: slack.of("chat.postMessage"))
        diag = slack.of("chat.postMessage")[0]
        resync = next(e for b in diag.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                      if e["action_id"] == "syncbot.fix.resync")
        click_over_http(base, secret, slack, resync, "U0ALICE01", diag.ts)
        assert wait_for(lambda: slack.of("views.open"))  # a two-person fix asks why first: the form
        form = slack.of("views.open")[0].params["view"]
        form = json.loads(form) if isinstance(form, str) else form
        field = next(b for b in form["blocks"] if b["type"] == "input")
        body = view_submission_body(form, {field["block_id"]: {field["element"]["action_id"]: "stalled 3 h"}},
                                    "U0ALICE01")
        assert post(base + "/slack/events", body, signed_headers(body, secret))[0] == 200
        assert wait_for(lambda: len(slack.of("chat.postMessage")) == 2)
        request = slack.of("chat.postMessage")[1]
        approve = next(e for b in request.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                       if e["text"]["text"] == "Approve")
        for _ in range(3):  # Slack retrying the same click
            click_over_http(base, secret, slack, approve, "U0BOB0002", request.ts)
        assert wait_for(lambda: len(wiring.queues["syncbot-resync"]) >= 1)
        wiring.worker(connection=redis).work(burst=True)
        truncates = [s for s in sandbox.snowflake.statements if s.startswith("TRUNCATE")]
        assert truncates == ["TRUNCATE TABLE STAGING.ORDERS_CDC", "TRUNCATE TABLE PUBLIC.ORDERS"]
        assert len(sandbox.dms_task().reloads) == 1
        assert slack.messages[request.ts].params["text"] == "Re-sync table orders: done"
    finally:
        server.shutdown()
        server.server_close()
