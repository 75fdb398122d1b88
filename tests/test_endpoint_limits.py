"""The public endpoint under abuse: oversized and stale requests are refused before Bolt reads them,
and a crowd of idle connections does not lock out the health probe. Real waitress on 127.0.0.1 only,
with bounded loops."""
import io
import resource
import socket
import threading
import time
import urllib.request

import pytest

from bot.services import assemble
from handlers.app import web_client
from syncbot import server
from syncbot.sandbox.slack import signed_headers, slash_command_body
from syncbot.wiring import wire


class Untouchable(io.RawIOBase):
    """A request body that must not be read."""

    def read(self, *args):
        raise AssertionError("the body was read")


def call(app, environ):
    seen = {}

    def start_response(status, headers):
        seen["status"] = status

    body = b"".join(app(environ, start_response))
    return seen["status"], body


def inner(environ, start_response):
    raise AssertionError("Bolt was reached")


def test_stale_or_missing_timestamp_is_refused_before_the_body_is_read():
    guard = server.guarded(inner, now=lambda: 1_700_000_000)
    for stamp in ("", "soon", str(1_700_000_000 - 301), str(1_700_000_000 + 301)):
        environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": "10", "wsgi.input": Untouchable(),
                   **({"HTTP_X_SLACK_REQUEST_TIMESTAMP": stamp} if stamp else {})}
        assert call(guard, environ)[0].startswith("401")


def test_declared_oversized_body_is_refused_unread():
    guard = server.guarded(inner, now=lambda: 1_700_000_000)
    environ = {"REQUEST_METHOD": "POST", "CONTENT_LENGTH": str(150 * 1024 * 1024), "wsgi.input": Untouchable(),
               "HTTP_X_SLACK_REQUEST_TIMESTAMP": "1700000000"}
    assert call(guard, environ)[0].startswith("413")


def test_undeclared_body_is_read_only_to_the_limit():
    class Endless(io.RawIOBase):
        served = 0

        def read(self, n=-1):
            assert n != -1, "an unbounded read"
            self.served += n
            return b"x" * n

    stream = Endless()
    guard = server.guarded(inner, now=lambda: 1_700_000_000)
    environ = {"REQUEST_METHOD": "POST", "wsgi.input": stream, "HTTP_X_SLACK_REQUEST_TIMESTAMP": "1700000000"}
    assert call(guard, environ)[0].startswith("413")
    assert stream.served == server.MAX_BODY_BYTES + 1


@pytest.fixture
def waitress_server(make_sandbox, redis, slack):
    sandbox = make_sandbox("healthy", real_aurora=False)
    bot = assemble(sandbox.catalog, sandbox.gateways, redis)
    secret = "s3cret-for-the-endpoint-test"
    app = wire(bot, client=web_client("xoxb-test", slack.api_url), signing_secret=secret).app
    http = server.http_server(app, bot, "127.0.0.1", 0, threads=4)
    thread = threading.Thread(target=http.run, daemon=True)
    thread.start()
    yield http, secret
    http.close()


def raw_request(port, head: bytes, body_chunks, timeout=10.0) -> bytes:
    """Sends the head, then body chunks until the server stops reading; returns what it answered."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed: what we want
        try:
            return sock.recv(65536)
        except ConnectionResetError:
            return b""


def test_oversized_bodies_get_413_without_growing_memory(waitress_server):
    http, secret = waitress_server
    port = http.effective_port
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    stamp = str(int(time.time()))
    declared = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                f"X-Slack-Request-Timestamp: {stamp}\r\nContent-Length: {150 * 1024 * 1024}\r\n\r\n").encode()
    answer = raw_request(port, declared, (b"x" * 65536 for _ in range(64)))  # up to 4 MiB of it
    assert answer.startswith(b"HTTP/1.1 413")
    chunked = (f"POST /slack/events HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
               f"X-Slack-Request-Timestamp: {stamp}\r\n\r\n").encode()
    answer = raw_request(port, chunked, (b"10000\r\n" + b"x" * 65536 + b"\r\n" for _ in range(64)))
    assert answer.startswith(b"HTTP/1.1 413")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 32 * 1024, f"peak RSS grew by {grown_kib} KiB"


def test_a_signed_request_under_the_limit_still_works(waitress_server, slack):
    http, secret = waitress_server
    body = slash_command_body("help", "U0ALICE01", "C0INCIDNT", slack.response_url())
    req = urllib.request.Request(f"http://127.0.0.1:{http.effective_port}/slack/events", data=body.encode(),
                                 headers=signed_headers(body, secret), method="POST")
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.status == 200


def test_healthz_answers_while_hundreds_of_idle_connections_are_open(waitress_server):
    http, _ = waitress_server
    port = http.effective_port
    idle = []
    try:
        for _ in range(300):  # three times waitress's default connection limit
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            sock.sendall(b"POST /slack/events HTTP/1.1\r\nHost: x\r\n")  # headers never finished
            idle.append(sock)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
            assert resp.status == 200
    finally:
        for sock in idle:
            sock.close()
    assert http.adj.channel_timeout <= 30 and http.adj.max_request_body_size == server.MAX_BODY_BYTES
