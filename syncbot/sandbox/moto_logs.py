"""Where moto's CloudWatch Logs answers FilterLogEvents differently from AWS: a stream named in
logStreamNames that does not exist. AWS refuses the call ("ResourceNotFoundException: The specified log
stream does not exist.", as quoted in percona/rds_exporter#81); moto answers with no events. A DMS task
whose logging is off has no stream, so the sandbox answers as AWS does."""
from __future__ import annotations

from typing import Any

from moto.logs import exceptions, models

_installed = False


def install() -> None:
    """Idempotent; patches the backend class moto dispatches to, so every mock_aws() sees it."""
    global _installed
    if _installed:
        return
    _installed = True
    original = models.LogsBackend.filter_log_events

    def filter_log_events(self: Any, log_group_name: str, log_stream_names: list[str], *args: Any,
                          **kwargs: Any) -> Any:
        group = self.groups.get(log_group_name)
        if group is not None and any(name not in group.streams for name in log_stream_names or []):
            raise exceptions.ResourceNotFoundException("The specified log stream does not exist.")
        return original(self, log_group_name, log_stream_names, *args, **kwargs)

    models.LogsBackend.filter_log_events = filter_log_events
