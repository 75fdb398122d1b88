"""A small time-bounded memo for reads whose answer changes only when someone reconfigures AWS (a task's
endpoints, its replication instance): a fleet round then costs one DescribeEndpoints per endpoint every
few minutes, not one per table per round. Failures are never kept: the next round asks again."""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Hashable

SLOW_CHANGING_S = 300.0  # an endpoint or instance changed in AWS shows within five minutes


class TtlCache:
    def __init__(self, ttl_s: float = SLOW_CHANGING_S, clock: Callable[[], float] = time.monotonic):
        self._ttl, self._clock = ttl_s, clock
        self._lock = threading.Lock()
        self._kept: dict[Hashable, tuple[float, Any]] = {}

    def get(self, key: Hashable, read: Callable[[], Any]) -> Any:
        now = self._clock()
        with self._lock:
            found = self._kept.get(key)
        if found is not None and now - found[0] < self._ttl:
            return found[1]
        value = read()  # raises: nothing kept
        with self._lock:
            self._kept[key] = (now, value)
        return value

    def forget(self) -> None:
        with self._lock:
            self._kept.clear()
