"""Counting a backend's calls where they leave the process, so that no gateway carries a counter for
its tests: botocore's own event hook for AWS, a counting connect for PostgreSQL. The sandbox, the tests
and the benchmark's callers count here, keyed (backend, operation) as the benchmark's servers log them.

botocore emits `before-call.<service>.<Operation>` once per API call, before its retries, so a call
counts once however many attempts it took (botocore/client.py, BaseClient._make_api_call)."""
from __future__ import annotations

from collections import Counter
from typing import Any, Callable


def count_aws(client: Any, calls: Counter | None = None) -> Counter:
    """Counts every API call `client` makes into `calls` (a new Counter if none): ("dms",
    "DescribeReplicationTasks") and so on. Returns the counter."""
    calls = Counter() if calls is None else calls
    service = client.meta.service_model.service_name  # "dms", "logs": the event names hyphenize the id

    def counted(event_name: str, **_: Any) -> None:
        calls[service, event_name.rsplit(".", 1)[1]] += 1

    client.meta.events.register("before-call", counted)
    return calls


def counting_connect(connect: Callable[..., Any], calls: Counter, backend: str = "aurora") -> Callable[..., Any]:
    """`connect` that counts its logins as (backend, "login"): the Aurora gateway logs in once per read."""
    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[backend, "login"] += 1
        return connect(*args, **kwargs)

    return counted


def backend(calls: Counter, *names: str, logins: bool = True) -> int:
    """The calls made to any of the backends `names` ("dms", "cloudwatch", "logs"...); without
    `logins`, only what was asked once logged in (statements, reads)."""
    return sum(n for (name, op), n in calls.items() if name in names and (logins or op != "login"))


def counting_cursors(connect: Callable[[], Any], calls: Counter, backend: str = "snowflake") -> Callable[[], Any]:
    """`connect` whose logins count as (backend, "login") and whose cursors' statements as (backend,
    "statement"): the Snowflake gateway's pool sees the connector's own connections, only counted."""
    def counted() -> Any:
        calls[backend, "login"] += 1
        return _Connection(connect(), calls, backend)

    return counted


class _Delegate:
    def __init__(self, inner: Any, calls: Counter, backend: str):
        self._inner, self._calls, self._backend = inner, calls, backend

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _Connection(_Delegate):
    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        return _Cursor(self._inner.cursor(*args, **kwargs), self._calls, self._backend)


class _Cursor(_Delegate):
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        self._calls[self._backend, "statement"] += 1
        return self._inner.execute(*args, **kwargs)
