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


def backend(calls: Counter, *names: str) -> int:
    """The calls made to any of the backends `names` ("dms", "cloudwatch", "logs"...)."""
    return sum(n for (name, _), n in calls.items() if name in names)
