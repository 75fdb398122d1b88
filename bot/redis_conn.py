"""The one place a Redis connection is made (web, worker, CLI, RQ's queues and the lease heartbeat all
come here), and what "recorded" means for the approval store.

With REDIS_SENTINELS the primary is found through Redis Sentinel (redis-py's Sentinel support): every
new connection asks the sentinels for the current primary, and connections to a demoted one are
dropped, so after a failover each process reaches the new primary by itself. Database, password and
TLS still come from REDIS_URL.

Replication is asynchronous: a write the primary answered can vanish when a replica that had not
received it is promoted. A transition someone acts on is therefore sent together with `WAIT n t` on
the same connection (WAIT blocks that connection until its earlier writes reached n replicas,
https://redis.io/docs/latest/commands/wait/); fewer than n is NotConfirmed, and the caller fails
closed exactly as if Redis were down."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import redis
import redis.connection
from redis.exceptions import RedisError
from redis.sentinel import Sentinel

from .settings import Settings

# Short socket timeouts for everything that answers a person or fences a step: a dead primary costs
# seconds, not a hung click. RQ's own loop blocks on purpose (build_queue_redis in services).
_QUICK = {"socket_timeout": 2, "socket_connect_timeout": 2}
_BLOCKING = {"socket_timeout": None, "socket_connect_timeout": 2, "socket_keepalive": True,
             "health_check_interval": 30}


class NotConfirmed(RedisError):
    """The primary took the write, but fewer replicas than required confirmed it in time: it may not
    survive a failover, so nothing may act on it."""


@dataclass(frozen=True)
class Replication:
    """How many replicas must confirm a transition (0: none asked, as with a single Redis), and how
    long WAIT waits for them."""

    min_replicas: int = 0
    wait_ms: int = 1000


def replication(settings: Settings) -> Replication:
    return Replication(settings.min_replicas, settings.redis_wait_ms)


def connect(settings: Settings, *, blocking: bool = False) -> redis.Redis:
    """A client on the primary: through the sentinels when REDIS_SENTINELS is set, else REDIS_URL's host.
    `blocking`: for RQ's worker loop, which waits for jobs with a blocking pop of minutes."""
    options = _BLOCKING if blocking else _QUICK
    url = settings.redis_url.get_secret_value()
    if not settings.sentinel_addresses:
        return redis.Redis.from_url(url, **options)
    kwargs = redis.connection.parse_url(url)
    kwargs.pop("host", None)
    kwargs.pop("port", None)
    if issubclass(kwargs.pop("connection_class", redis.Connection), redis.SSLConnection):
        kwargs["ssl"] = True  # SentinelConnectionPool picks its SSL connection class from this
    password = settings.redis_sentinel_password
    sentinel = Sentinel(settings.sentinel_addresses,
                        sentinel_kwargs={**_QUICK, **({"password": password.get_secret_value()} if password else {})})
    return sentinel.master_for(settings.redis_sentinel_master, **kwargs, **options)


def confirmed(client: Any, rules: Replication, command: Callable[[Any], Any]) -> Any:
    """`command(target)` runs one write on `target`; when replicas are required it is queued on a
    pipeline with WAIT behind it, so both go over the same connection. Returns the command's reply, or
    raises NotConfirmed (the write may stand on this primary, but nobody may act on it)."""
    if rules.min_replicas <= 0:
        return command(client)
    pipe = client.pipeline(transaction=False)
    command(pipe)
    pipe.execute_command("WAIT", rules.min_replicas, rules.wait_ms)
    reply, acks = pipe.execute()
    if int(acks) < rules.min_replicas:
        raise NotConfirmed(f"{acks} of {rules.min_replicas} replica(s) confirmed within {rules.wait_ms} ms")
    return reply


@dataclass(frozen=True)
class Topology:
    primary: str  # host:port of the primary this process reaches
    replicas: tuple[str, ...]  # host:port of each replica the primary reports online
    via_sentinel: bool


def topology(client: Any) -> Topology:
    """The primary this client reaches and its online replicas, from the primary's INFO replication."""
    info = client.info("replication")
    pool = client.connection_pool
    if hasattr(pool, "get_master_address"):
        host, port = pool.get_master_address()
        primary, via = f"{host}:{port}", True
    else:
        kw = pool.connection_kwargs
        primary, via = (f"{kw.get('host')}:{kw.get('port')}" if kw.get("host") else str(kw.get("path", ""))), False
    replicas = tuple(f"{v['ip']}:{v['port']}" for k, v in sorted(info.items())
                     if k.startswith("slave") and isinstance(v, dict) and v.get("state") == "online")
    return Topology(primary, replicas, via)
