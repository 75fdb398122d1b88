"""`syncbot serve`: the Bolt app over HTTP (waitress, threaded) or Socket Mode, plus health probes."""
from __future__ import annotations

import gc
import io
import json
import logging
import time
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.core import SyncBot

log = logging.getLogger(__name__)

# Slack's own requests are small: a slash command is a few hundred bytes, an interaction carries the
# message it came from, which this bot keeps within 50 blocks of at most 3,000 characters (~150 KB of
# text, ~3x that once JSON-escaped and form-encoded). 1 MiB is twice the largest we can be sent;
# anything bigger is not from Slack and is refused before a byte of it is parsed.
MAX_BODY_BYTES = 1024 * 1024
# Slack's signing-secret rule: a request whose X-Slack-Request-Timestamp is more than five minutes
# from now is a replay. Checked from the header alone, before the body is read.
TIMESTAMP_WINDOW_S = 300

# waitress, set so a crowd of idle or slow clients cannot lock out Slack or the probes: the default
# 100 connections become 1,000 (poll(), not select(), so file descriptors past 1,024 work), an idle or
# stalled connection is closed after 15 s instead of 120 (checked every 5 s), headers are capped at
# 64 KiB and bodies at MAX_BODY_BYTES (waitress answers 413 from Content-Length, or as soon as a
# chunked body passes it, without handing anything to the app).
WAITRESS_LIMITS = {
    "connection_limit": 1000,
    "asyncore_use_poll": True,
    "channel_timeout": 15,
    "cleanup_interval": 5,
    "max_request_header_size": 64 * 1024,
    "max_request_body_size": MAX_BODY_BYTES,
}


def wsgi_app(app: App, bot: SyncBot) -> Callable:
    """POST /slack/events for commands, interactivity and events; GET /healthz and /readyz."""
    slack = guarded(SlackRequestHandler(app, path="/slack/events"))

    def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "GET" and path == "/healthz":
            return _json(start_response, 200, {"status": "ok"})
        if environ.get("REQUEST_METHOD") == "GET" and path == "/readyz":
            deps = bot.readiness()
            ready = all(state == "ok" for state in deps.values())
            return _json(start_response, 200 if ready else 503,
                         {"ready": ready, "dependencies": deps, "warnings": bot.warnings() if ready else [],
                          "redis": bot.redis_topology() if ready else {}})
        return slack(environ, start_response)

    return application


def guarded(slack: Callable, now: Callable[[], float] = time.time) -> Callable:
    """Refuses what cannot be a fresh Slack request before Bolt reads or parses a byte of it: a stale
    or missing timestamp (401) or a body over MAX_BODY_BYTES (413), whatever WSGI server is in front."""

    def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") != "POST":
            return slack(environ, start_response)
        try:
            stamp = int(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP", ""))
        except ValueError:
            stamp = None
        if stamp is None or abs(now() - stamp) > TIMESTAMP_WINDOW_S:
            return _json(start_response, 401, {"error": "missing or stale X-Slack-Request-Timestamp"})
        try:
            declared = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _json(start_response, 400, {"error": "bad Content-Length"})
        if declared > MAX_BODY_BYTES:
            return _json(start_response, 413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
        # Read at most one byte past the limit: a server that streams an undeclared body cannot make us buffer it.
        body = environ["wsgi.input"].read(declared) if declared else environ["wsgi.input"].read(MAX_BODY_BYTES + 1)
        if len(body) > MAX_BODY_BYTES:
            return _json(start_response, 413, {"error": f"body over {MAX_BODY_BYTES} bytes"})
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return slack(environ, start_response)

    return application


_PHRASES = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 413: "Content Too Large", 503: "Service Unavailable"}


def _json(start_response: Callable, status: int, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    phrase = _PHRASES[status]
    start_response(f"{status} {phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


# A burst of Slack requests (a channel running /sync-status at once) is read and acknowledged side by
# side: with fewer threads than requests in flight, the rest wait in waitress's queue before Bolt sees
# them. Threads only wait for acks here (handlers.app.AcksFirst), so they are cheap.
HTTP_THREADS = 64


def http_server(app: App, bot: SyncBot, host: str, port: int, threads: int = HTTP_THREADS):
    """waitress with WAITRESS_LIMITS in front of wsgi_app; `.run()` serves until the process ends."""
    import waitress

    return waitress.create_server(wsgi_app(app, bot), host=host, port=port, threads=threads, ident="syncbot",
                                  **WAITRESS_LIMITS)


def serve_http(app: App, bot: SyncBot, host: str, port: int, threads: int = HTTP_THREADS) -> None:
    server = http_server(app, bot, host, port, threads)
    log.info("serving POST /slack/events, GET /healthz, GET /readyz on %s:%s", host, port)
    # Everything built so far (clients, service models, the catalog) lives as long as the process: keep
    # it out of the collector's full passes, which otherwise pause every thread for ~100 ms mid-burst.
    gc.collect()
    gc.freeze()
    server.run()


def serve_socket_mode(app: App, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    SocketModeHandler(app, app_token).start()
