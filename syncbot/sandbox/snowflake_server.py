"""fakesnow's HTTP server in a thread of this process: the real snowflake-connector-python logs in and
runs its statements over HTTP, as it does against Snowflake (the in-process FakeSnow.connect() swaps
the connector's connection for fakesnow's own, so it never exercises the connector's sessions, errors
or wire). Used by the tests of the connection handling and by the benchmark; needs fakesnow[server]."""
from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from typing import Any, Callable, Iterator


@contextlib.contextmanager
def serving(wrap: Callable[[Any], Any] = lambda app: app, host: str = "127.0.0.1") -> Iterator[dict[str, Any]]:
    """Yields snowflake.connector.connect() arguments for the server; `wrap` may put an ASGI layer
    in front of fakesnow's app. fakesnow's own fakesnow.server() is not used: importing its
    fakesnow.server module replaces that function, so it starts a server only once per process."""
    import uvicorn
    from fakesnow.server import app

    # fakesnow's server logs every login and every refused statement's whole text at INFO.
    logging.getLogger("fakesnow.server").setLevel(logging.WARNING)

    with contextlib.closing(socket.socket()) as sock:
        sock.bind((host, 0))
        port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(wrap(app), host=host, port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="fakesnow-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("fakesnow's server did not start")
        time.sleep(0.02)
    try:
        yield {"user": "fake", "password": "snow", "account": "fakesnow", "host": host, "port": port,
               "protocol": "http", "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
               "network_timeout": 5, "login_timeout": 5, "platform_detection_timeout_seconds": 0.0}
    finally:
        server.should_exit = True
        thread.join(5)
