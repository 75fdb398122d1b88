"""The process's log format and its correlation ids.

`SYNCBOT_LOG_FORMAT=json` writes one JSON object per line (python-json-logger): time, level, logger,
message, and every correlation id the record knows. The ids live in a context variable, bound where
the work begins (`correlated`): the Slack request (its trigger or event id) in the web process, the
approval request id wherever a request is touched, and the RQ job id, table and DMS task in the
worker. The approval request id follows a re-sync from the click to the worker's last step, so
filtering on it tells the whole story. Every field passes the redaction step (bot.redaction)."""
from __future__ import annotations

import contextvars
import logging
import sys
from contextlib import contextmanager
from typing import Iterator

from pythonjsonlogger.json import JsonFormatter

# The ids a record may carry, as the JSON fields are named.
FIELDS = ("slack_request", "request_id", "rq_job", "table", "dms_task")
_IDS: contextvars.ContextVar[dict[str, str]] = contextvars.ContextVar("syncbot_log_ids", default={})


@contextmanager
def correlated(**ids: str | None) -> Iterator[None]:
    """Within the block (and in the threads it hands work to with copy_context), records carry `ids`."""
    token = _IDS.set({**_IDS.get(), **{k: str(v) for k, v in ids.items() if v}})
    try:
        yield
    finally:
        _IDS.reset(token)


class CorrelationFilter(logging.Filter):
    """Copies the bound ids onto each record (ids passed as `extra=` win)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _IDS.get().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


def configure(level: str, fmt: str | None) -> None:
    """One stderr handler on the root logger: plain text, or JSON when `fmt` is "json"."""
    handler = logging.StreamHandler(sys.stderr)
    if (fmt or "").lower() == "json":
        handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                           rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(CorrelationFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
