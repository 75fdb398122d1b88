"""`syncbot serve`: the Bolt app over HTTP (waitress, threaded) or Socket Mode, plus health probes."""
from __future__ import annotations

import gc
import io
import json
import logging
import signal
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from waitress import wasyncore

from bot import metrics
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


class Lifecycle:
    """What the probes say beyond the dependencies: whether a shutdown began (then /readyz is 503 at
    once, so the load balancer drains this replica first) and, in Socket Mode, whether the WebSocket
    to Slack is connected."""

    def __init__(self, connected: Callable[[], bool] | None = None):
        self.stopping = threading.Event()
        self.connected = connected

    def states(self) -> dict[str, str]:
        found = {}
        if self.connected is not None:
            found["slack_socket_mode"] = "ok" if self.connected() else "down: not connected (reconnecting)"
        if self.stopping.is_set():
            found["shutdown"] = "in progress: not taking new work"
        return found


def wsgi_app(app: App | None, bot: SyncBot, life: Lifecycle | None = None) -> Callable:
    """POST /slack/events for commands, interactivity and events (HTTP mode; None: probes only, for
    Socket Mode); GET /healthz, /readyz and /metrics."""
    slack = guarded(SlackRequestHandler(app, path="/slack/events")) if app is not None else None
    life = life or Lifecycle()

    def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "GET" and path == "/healthz":
            return _json(start_response, 200, {"status": "ok"})
        if environ.get("REQUEST_METHOD") == "GET" and path == "/readyz":
            deps = {**bot.readiness(), **life.states()}
            ready = all(state == "ok" for state in deps.values())
            return _json(start_response, 200 if ready else 503,
                         {"ready": ready, "dependencies": deps, "warnings": bot.warnings() if ready else [],
                          "redis": bot.redis_topology() if ready else {}})
        if environ.get("REQUEST_METHOD") == "GET" and path == "/metrics":
            body, content_type = metrics.exposition()
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
            return [body]
        if slack is None:
            return _json(start_response, 404, {"error": "not found"})
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


_PHRASES = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 413: "Content Too Large",
            503: "Service Unavailable"}


def _json(start_response: Callable, status: int, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    phrase = _PHRASES[status]
    start_response(f"{status} {phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


# A burst of Slack requests (a channel running /sync-status at once) is read and acknowledged side by
# side: with fewer threads than requests in flight, the rest wait in waitress's queue before Bolt sees
# them. Threads only wait for acks here (handlers.app.AcksFirst), so they are cheap.
HTTP_THREADS = 64


def http_server(app: App | None, bot: SyncBot, host: str, port: int, threads: int = HTTP_THREADS,
                life: Lifecycle | None = None):
    """waitress with WAITRESS_LIMITS in front of wsgi_app; `.run()` serves until the process ends."""
    import waitress

    return waitress.create_server(wsgi_app(app, bot, life), host=host, port=port, threads=threads, ident="syncbot",
                                  **WAITRESS_LIMITS)


@dataclass(frozen=True)
class Shutdown:
    """SIGTERM's sequence (a deploy: SIGTERM, then SIGKILL after the grace period). For `drain_s`
    /readyz answers 503 while requests are still served, so the load balancer stops sending here; then
    no new connection (HTTP) or the Socket Mode connection is closed (Slack delivers to the other
    replicas' connections); then what was acknowledged, a diagnosis included, is finished within
    `bound_s`. The grace period must exceed drain_s + bound_s (README: "Deploy on Kubernetes")."""

    drain_s: float = 5.0
    bound_s: float = 20.0


def serve_http(app: App, bot: SyncBot, host: str, port: int, threads: int = HTTP_THREADS,
               pool: Any = None, shutdown: Shutdown = Shutdown()) -> None:
    """Serves until SIGTERM or SIGINT, then shuts down as `shutdown` says. `pool`: the listener
    executor (handlers.acks) whose acknowledged work is waited for."""
    life = Lifecycle()
    server = http_server(app, bot, host, port, threads, life)
    log.info("serving POST /slack/events, GET /healthz, GET /readyz, GET /metrics on %s:%s", host,
             server.effective_port)
    # Everything built so far (clients, service models, the catalog) lives as long as the process: keep
    # it out of the collector's full passes, which otherwise pause every thread for ~100 ms mid-burst.
    gc.collect()
    gc.freeze()
    threading.Thread(target=server.run, name="waitress", daemon=True).start()
    _until_signalled(life)
    time.sleep(shutdown.drain_s)
    # In waitress's own loop thread: stop listening; requests already read are still answered.
    server.trigger.pull_trigger(lambda: wasyncore.dispatcher.close(server))
    log.info("no longer accepting connections")
    _finish(pool, shutdown)


def serve_socket_mode(app: App, app_token: str, bot: SyncBot, host: str, port: int, pool: Any = None,
                      shutdown: Shutdown = Shutdown()) -> None:
    """Socket Mode, with the same probes and /metrics on host:port; on SIGTERM as serve_http."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(app, app_token)
    life = Lifecycle(connected=SocketState(handler.client))
    probes = http_server(None, bot, host, port, threads=4, life=life)
    log.info("Socket Mode; serving GET /healthz, GET /readyz, GET /metrics on %s:%s", host, probes.effective_port)
    threading.Thread(target=probes.run, name="waitress-probes", daemon=True).start()
    handler.connect()
    _until_signalled(life)
    time.sleep(shutdown.drain_s)
    _close_cleanly(handler)
    log.info("Socket Mode connection closed")
    _finish(pool, shutdown)


class SocketState:
    """Is the Socket Mode connection up? slack_sdk's client keeps reporting its old socket as connected
    while it reconnects (and until a ping fails, after a silent drop), so this follows what Slack says
    as well: a `hello` message opens every connection, a `disconnect` message announces its end
    (https://api.slack.com/apis/connections/socket-implement#disconnect), and a connection whose pings
    went unanswered for three intervals is down."""

    def __init__(self, client: Any):
        self._client, self._up = client, False
        client.on_message_listeners.append(self._message)

    def _message(self, raw: str) -> None:
        try:
            kind = json.loads(raw).get("type")
        except (ValueError, AttributeError):
            return
        if kind in ("hello", "disconnect"):
            self._up = kind == "hello"

    def __call__(self) -> bool:
        if not (self._up and self._client.is_connected()):
            return False
        last = getattr(self._client.current_session, "last_ping_pong_time", None)
        return last is None or time.time() - last < 3 * self._client.ping_interval


def _close_cleanly(handler: Any) -> None:
    """A WebSocket close frame (1000, normal closure; RFC 6455 7.4.1), then the connection closed with
    no reconnect: Slack then delivers to the app's other open connections, each message to one of them
    (https://api.slack.com/apis/connections/socket-implement#connections). slack_sdk's built-in client
    only closes the socket (Slack's Node SDK sends the close frame), so the frame is sent with its own
    frame builder."""
    from slack_sdk.socket_mode.builtin.frame_header import FrameHeader
    from slack_sdk.socket_mode.builtin.internals import _build_data_frame_for_sending

    session = handler.client.current_session
    sock = getattr(session, "sock", None)
    if sock is not None:
        try:
            with session.sock_send_lock:
                sock.send(_build_data_frame_for_sending(struct.pack("!H", 1000), FrameHeader.OPCODE_CLOSE))
        except OSError:
            pass  # gone already: closing is all that is left
    handler.close()


def _until_signalled(life: Lifecycle) -> None:
    """Blocks the main thread until SIGTERM or SIGINT; from that moment /readyz is 503."""
    def stop(signum: int, _frame: Any) -> None:
        life.stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, stop)
    while not life.stopping.wait(0.5):
        pass
    log.info("shutting down: /readyz is 503")


def _finish(pool: Any, shutdown: Shutdown) -> None:
    if pool is not None and not pool.idle(shutdown.bound_s):
        log.warning("shutdown: acknowledged work still running after %gs; exiting anyway", shutdown.bound_s)
    log.info("shutdown complete")
