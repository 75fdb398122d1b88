"""`syncbot serve` for the benchmark, in its own process: the production wiring and HTTP server
(syncbot.wiring.wire, then syncbot.server.serve_http: waitress), with the fleet's stand-in backends in
place of the clients bot.services would build, and an in-memory Redis unless $SYNCBOT_BENCH_REDIS_URL names
a real one.

    SLACK_SIGNING_SECRET=... python -m bench.target --port 8123 --slack-api-url http://127.0.0.1:9/api/
"""
from __future__ import annotations

import argparse
import logging
import os
import signal

import fakeredis
import redis

from bot.services import assemble
from handlers.app import web_client
from syncbot import server
from syncbot.wiring import wire

from .fleet import Backends, Fleet

REDIS_URL_ENV = "SYNCBOT_BENCH_REDIS_URL"  # a real Redis for the server; an in-memory one without it


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.target")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--slack-api-url", required=True)
    parser.add_argument("--tables", type=int, default=50)
    parser.add_argument("--latency-ms", type=float, default=50.0, help="every backend round trip")
    parser.add_argument("--slow-snowflake-ms", type=float, default=0.0,
                        help="Snowflake's round trips once the process gets SIGUSR1 (a warehouse gone slow)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    backends = Backends(args.latency_ms / 1000)
    signal.signal(signal.SIGUSR1, lambda *_: backends.slow.update(snowflake=args.slow_snowflake_ms / 1000))
    fleet = Fleet(args.tables, backends)
    url = os.environ.get(REDIS_URL_ENV)
    store = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) if url else fakeredis.FakeRedis()
    wiring = wire(assemble(fleet.catalog, fleet.gateways(), store),
                  client=web_client("xoxb-bench", args.slack_api_url),
                  signing_secret=os.environ["SLACK_SIGNING_SECRET"])
    # Stopped by the bench with SIGTERM: no load balancer to drain.
    server.serve_http(wiring.app, wiring.bot, "127.0.0.1", args.port, shutdown=server.Shutdown(0, 1))


if __name__ == "__main__":
    main()
