"""Per-request callback URLs: an opaque URL the chat glue received with a click, kept in Redis for as
long as it stays valid, so the worker can still reach the people behind a request when posting the
usual way is refused. Best effort: the request's own state lives in bot.remediation.approvals."""
from __future__ import annotations

import logging

import redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)
_KEY = "syncbot:callback:{}"


def keep(store: redis.Redis, request_id: str, url: str, ttl_s: int) -> None:
    try:
        store.set(_KEY.format(request_id), url, ex=ttl_s)
    except RedisError:
        log.warning("could not keep the callback URL of request %s", request_id)


def recall(store: redis.Redis, request_id: str) -> str | None:
    try:
        url = store.get(_KEY.format(request_id))
    except RedisError:
        return None
    return url.decode() if url else None


def first_time(store: redis.Redis, key: str, ttl_s: int) -> bool:
    """True once per key (SET NX) across replicas and retries; False where Redis cannot say (fail closed:
    a missed notice rather than a repeated one)."""
    try:
        return bool(store.set(f"syncbot:once:{key}", "1", nx=True, ex=ttl_s))
    except RedisError:
        return False
