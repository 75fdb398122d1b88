"""An ASGI layer in front of fakesnow's server: counts logins and statements as they arrive over HTTP,
and answers the telemetry reads fakesnow lacks (SYSTEM$PIPE_STATUS, the COPY_HISTORY and TASK_HISTORY
table functions, SHOW TASKS; the tests and the sandbox fake the same at the gateway seam).

Everything else about those statements stays real: the connector binds the names client-side and
sends the statement over HTTP, fakesnow parses and runs it in DuckDB and answers in the connector's
own result format. The layer only swaps each SYSTEM$PIPE_STATUS('<pipe>') for the pipe's status text
and each COPY_HISTORY(TABLE_NAME=>'<table>', ...) for a read of the load history it holds in a real
table. A pipe or table it does not know is left as sent, so fakesnow refuses the statement as
Snowflake would (002003 "does not exist", or a compilation error): the gateway's re-split runs
against real refusals."""
from __future__ import annotations

import gzip
import json
import re
import threading
from collections import Counter
from typing import Any, Callable

LOGIN_PATH, QUERY_PATH = "/session/v1/login-request", "/queries/v1/query-request"
HISTORY_TABLE = "TELEMETRY.COPY_HISTORY"  # TABLE_NAME, FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME
TASKS_TABLE = "TELEMETRY.TASKS"  # NAME, SCHEMA_NAME, STATE, SCHEDULE, PREDECESSORS: what SHOW TASKS lists
RUNS_TABLE = "TELEMETRY.TASK_HISTORY"  # NAME, SCHEMA_NAME, STATE, SCHEDULED_TIME, COMPLETED_TIME, ERROR_CODE, ERROR_MESSAGE

_PIPE_STATUS = re.compile(r"SYSTEM\$PIPE_STATUS\('([^']*)'\)")
_COPY_HISTORY = re.compile(r"TABLE\(INFORMATION_SCHEMA\.COPY_HISTORY\(TABLE_NAME=>'([^']*)', START_TIME=>([^)]*\)\))\)\)")
_TASK_HISTORY = re.compile(r"TABLE\(INFORMATION_SCHEMA\.TASK_HISTORY\(SCHEDULED_TIME_RANGE_START=>([^)]*\)\)), "
                           r"TASK_NAME=>'([^']*)', RESULT_LIMIT=>\d+\)\)")
# What each statement is, by the gateway's own SQL (bot.gateways.snowflake), for the counts.
_KINDS = (("SYSTEM$PIPE_STATUS", "SYSTEM$PIPE_STATUS"), ("COPY_HISTORY", "COPY_HISTORY"),
          ("TASK_HISTORY", "TASK_HISTORY"), ("SHOW TASKS", "SHOW TASKS"), ("SELECT MAX(", "MAX(freshness column)"),
          ("COUNT(*)", "COUNT(*) of final tables"), ("information_schema.columns", "information_schema.columns"))


class SnowpipeTelemetry:
    def __init__(self, app: Callable, pipes: dict[str, str], history_tables: set[str]):
        self._app = app
        self.pipes = pipes  # pipe -> SYSTEM$PIPE_STATUS text; a pipe left out does not exist
        self.history_tables = history_tables  # staging tables COPY_HISTORY knows
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def _count(self, what: str) -> None:
        with self._lock:
            self.counts[what] += 1

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path") if scope["type"] == "http" else None
        if path == LOGIN_PATH:
            self._count("login")
        if path != QUERY_PATH:
            await self._app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-encoding", b"content-length")]
        if (b"content-encoding", b"gzip") in scope["headers"]:
            body = gzip.decompress(body)
        request = json.loads(body)
        sql = request["sqlText"]
        self._count(next((kind for marker, kind in _KINDS if marker in sql), "other"))
        request["sqlText"] = self.rewrite(sql)
        body = json.dumps(request).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self._app({**scope, "headers": headers}, replay, send)

    def rewrite(self, sql: str) -> str:
        def status(match: re.Match) -> str:
            text = self.pipes.get(match.group(1))
            return match.group(0) if text is None else "'" + text.replace("'", "''") + "'"

        def history(match: re.Match) -> str:
            table, since = match.group(1), match.group(2)
            if table not in self.history_tables:
                return match.group(0)
            return (f"(SELECT FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME FROM {HISTORY_TABLE} "
                    f"WHERE TABLE_NAME = '{table}' AND LAST_LOAD_TIME >= {since})")

        def runs(match: re.Match) -> str:
            since, task = match.group(1), match.group(2)
            return (f"(SELECT STATE, SCHEDULED_TIME, COMPLETED_TIME, ERROR_CODE, ERROR_MESSAGE, SCHEMA_NAME "
                    f"FROM {RUNS_TABLE} WHERE NAME = '{task}' AND SCHEDULED_TIME >= {since})")

        if sql.startswith("SHOW TASKS"):
            return (f"SELECT NAME AS name, SCHEMA_NAME AS schema_name, STATE AS state, SCHEDULE AS schedule, "
                    f"PREDECESSORS AS predecessors FROM {TASKS_TABLE}")
        return _TASK_HISTORY.sub(runs, _COPY_HISTORY.sub(history, _PIPE_STATUS.sub(status, sql)))
