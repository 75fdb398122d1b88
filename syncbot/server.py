"""`syncbot serve`: the Bolt app over HTTP (waitress, threaded) or Socket Mode, plus health probes."""
from __future__ import annotations

import gc
import json
import logging
from typing import Any, Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler

from bot.core import SyncBot

log = logging.getLogger(__name__)


def wsgi_app(app: App, bot: SyncBot) -> Callable:
    """POST /slack/events for commands, interactivity and events; GET /healthz and /readyz."""
    slack = SlackRequestHandler(app, path="/slack/events")

    def application(environ: dict[str, Any], start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if environ.get("REQUEST_METHOD") == "GET" and path == "/healthz":
            return _json(start_response, 200, {"status": "ok"})
        if environ.get("REQUEST_METHOD") == "GET" and path == "/readyz":
            deps = bot.readiness()
            ready = all(state == "ok" for state in deps.values())
            return _json(start_response, 200 if ready else 503,
                         {"ready": ready, "dependencies": deps, "warnings": bot.warnings() if ready else []})
        return slack(environ, start_response)

    return application


def _json(start_response: Callable, status: int, body: dict) -> list[bytes]:
    data = json.dumps(body).encode()
    phrase = {200: "OK", 503: "Service Unavailable"}[status]
    start_response(f"{status} {phrase}", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
    return [data]


# A burst of Slack requests (a channel running /sync-status at once) is read and acknowledged side by
# side: with fewer threads than requests in flight, the rest wait in waitress's queue before Bolt sees
# them. Threads only wait for acks here (handlers.app.AcksFirst), so they are cheap.
HTTP_THREADS = 64


def serve_http(app: App, bot: SyncBot, host: str, port: int, threads: int = HTTP_THREADS) -> None:
    import waitress

    log.info("serving POST /slack/events, GET /healthz, GET /readyz on %s:%s", host, port)
    # Everything built so far (clients, service models, the catalog) lives as long as the process: keep
    # it out of the collector's full passes, which otherwise pause every thread for ~100 ms mid-burst.
    gc.collect()
    gc.freeze()
    waitress.serve(wsgi_app(app, bot), host=host, port=port, threads=threads, ident="syncbot")


def serve_socket_mode(app: App, app_token: str) -> None:
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    SocketModeHandler(app, app_token).start()
