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
# One row per load attempt, as COPY_HISTORY returns them (a retried file has its failed row and its new one).
HISTORY_TABLE = "TELEMETRY.COPY_HISTORY"  # TABLE_NAME, FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME, PIPE_SCHEMA_NAME, PIPE_NAME
# What SHOW TASKS lists, every database's: NAME, SCHEMA_NAME, STATE, SCHEDULE, PREDECESSORS, ID, DATABASE_NAME,
# LAST_SUSPENDED_REASON.
TASKS_TABLE = "TELEMETRY.TASKS"
# The account's task runs, every database's (TASK_HISTORY is account-wide): NAME, SCHEMA_NAME, STATE,
# SCHEDULED_TIME, COMPLETED_TIME, ERROR_CODE, ERROR_MESSAGE, DATABASE_NAME, ROOT_TASK_ID.
RUNS_TABLE = "TELEMETRY.TASK_HISTORY"
HISTORY_COLUMNS = "TABLE_NAME, FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME, PIPE_SCHEMA_NAME, PIPE_NAME"
TASKS_COLUMNS = "NAME, SCHEMA_NAME, STATE, SCHEDULE, PREDECESSORS, ID, DATABASE_NAME, LAST_SUSPENDED_REASON"
RUNS_COLUMNS = ("NAME, SCHEMA_NAME, STATE, SCHEDULED_TIME, COMPLETED_TIME, ERROR_CODE, ERROR_MESSAGE, DATABASE_NAME, "
                "ROOT_TASK_ID")

_PIPE_STATUS = re.compile(r"SYSTEM\$PIPE_STATUS\('([^']*)'\)")
_COPY_HISTORY = re.compile(r"TABLE\(INFORMATION_SCHEMA\.COPY_HISTORY\(TABLE_NAME=>'([^']*)', START_TIME=>([^)]*\)\))\)\)")
_TASK_HISTORY = re.compile(r"TABLE\(INFORMATION_SCHEMA\.TASK_HISTORY\(SCHEDULED_TIME_RANGE_START=>([^)]*\)\)), "
                           r"TASK_NAME=>'([^']*)', ROOT_TASK_ID=>'([^']*)', RESULT_LIMIT=>(\d+)\)\)")
_ALTER_TASK = re.compile(r"^ALTER TASK ([A-Z0-9_$]+)\.([A-Z0-9_$]+)(?:\.([A-Z0-9_$]+))? (RESUME|SUSPEND)$")
# What each statement is, by the gateway's own SQL (bot.gateways.snowflake), for the counts.
_KINDS = (("SYSTEM$PIPE_STATUS", "SYSTEM$PIPE_STATUS"), ("COPY_HISTORY", "COPY_HISTORY"),
          ("TASK_HISTORY", "TASK_HISTORY"), ("SHOW TASKS", "SHOW TASKS"), ("SELECT MAX(", "MAX(freshness column)"),
          ("COUNT(*)", "COUNT(*) of final tables"), ("information_schema.columns", "information_schema.columns"))


def create_tables(cur: Any) -> None:
    """The layer's tables in fakesnow's shared database."""
    cur.execute("CREATE SCHEMA IF NOT EXISTS TELEMETRY")
    cur.execute(f"CREATE OR REPLACE TABLE {HISTORY_TABLE} (TABLE_NAME VARCHAR, FILE_NAME VARCHAR, STATUS VARCHAR, ROW_COUNT NUMBER, "
                "FIRST_ERROR_MESSAGE VARCHAR, LAST_LOAD_TIME TIMESTAMP_NTZ, PIPE_SCHEMA_NAME VARCHAR, PIPE_NAME VARCHAR)")
    cur.execute(f"CREATE OR REPLACE TABLE {TASKS_TABLE} (NAME VARCHAR, SCHEMA_NAME VARCHAR, STATE VARCHAR, SCHEDULE VARCHAR, "
                "PREDECESSORS VARCHAR, ID VARCHAR, DATABASE_NAME VARCHAR, LAST_SUSPENDED_REASON VARCHAR)")
    cur.execute(f"CREATE OR REPLACE TABLE {RUNS_TABLE} (NAME VARCHAR, SCHEMA_NAME VARCHAR, STATE VARCHAR, SCHEDULED_TIME "
                "TIMESTAMP_NTZ, COMPLETED_TIME TIMESTAMP_NTZ, ERROR_CODE VARCHAR, ERROR_MESSAGE VARCHAR, "
                "DATABASE_NAME VARCHAR, ROOT_TASK_ID VARCHAR)")


class SnowpipeTelemetry:
    def __init__(self, app: Callable, pipes: dict[str, str], history_tables: set[str],
                 definitions: dict[str, str] | None = None):
        self._app = app
        self.pipes = pipes  # pipe -> SYSTEM$PIPE_STATUS text; a pipe left out does not exist
        self.history_tables = history_tables  # staging tables COPY_HISTORY knows
        self.definitions = definitions or {}  # pipe -> its COPY statement, as DESCRIBE PIPE gives it
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
        refused = self.alter_task(sql)
        if refused is not None:
            from starlette.responses import JSONResponse

            await JSONResponse(refused)(scope, receive, send)
            return
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

    def alter_task(self, sql: str) -> dict[str, Any] | None:
        """ALTER TASK … RESUME / SUSPEND on the tasks table, refused as Snowflake refuses a child task's
        resume while its graph's root runs ("Unable to update graph with root task … since that root task
        is not suspended"; https://docs.snowflake.com/en/user-guide/tasks-graphs). None: not such a
        statement, or done; else the refusal as fakesnow's server answers one."""
        match = _ALTER_TASK.match(sql.strip().upper())
        if match is None:
            return None
        import fakesnow.server

        parts = [p for p in match.groups()[:3] if p]
        schema, name = parts[-2:]
        cur = fakesnow.server.shared_fs.connect("SYNC", "PUBLIC").cursor()
        try:
            cur.execute(f"SELECT PREDECESSORS FROM {TASKS_TABLE} WHERE SCHEMA_NAME = %s AND NAME = %s", (schema, name))
            row = cur.fetchone()
            if row is None:
                return _refusal("002003", "02000", f"Task '{name}' does not exist or not authorized.")
            if match.group(4) == "RESUME" and row[0] and json.loads(row[0]):
                root = _root(cur, schema, name)
                cur.execute(f"SELECT STATE FROM {TASKS_TABLE} WHERE SCHEMA_NAME = %s AND NAME = %s", (schema, root))
                if (cur.fetchone() or ("",))[0] == "started":
                    return _refusal("091083", "22000", f"Unable to update graph with root task SYNC.{schema}.{root} "
                                    "since that root task is not suspended.")
            state = "started" if match.group(4) == "RESUME" else "suspended"
            cur.execute(f"UPDATE {TASKS_TABLE} SET STATE = %s WHERE SCHEMA_NAME = %s AND NAME = %s", (state, schema, name))
        finally:
            cur.close()
        return {"data": {"rowtype": [{"name": "status", "type": "text", "nullable": True, "length": 100,
                                      "precision": None, "scale": None, "byteLength": None, "collation": None}],
                         "rowset": [["Statement executed successfully."]], "total": 1, "queryId": "telemetry",
                         "finalDatabaseName": "SYNC", "finalSchemaName": "PUBLIC", "queryResultFormat": "json"},
                "success": True}

    def rewrite(self, sql: str) -> str:
        def status(match: re.Match) -> str:
            text = self.pipes.get(match.group(1))
            return match.group(0) if text is None else "'" + text.replace("'", "''") + "'"

        def history(match: re.Match) -> str:
            table, since = match.group(1), match.group(2)
            if table not in self.history_tables:
                return match.group(0)
            return (f"(SELECT FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME, PIPE_SCHEMA_NAME, "
                    f"PIPE_NAME FROM {HISTORY_TABLE} WHERE TABLE_NAME = '{table}' AND LAST_LOAD_TIME >= {since})")

        def runs(match: re.Match) -> str:
            # As the reference says: every database's runs of a task of that (unqualified) name, narrowed by
            # ROOT_TASK_ID, the newest RESULT_LIMIT of them, before any WHERE of the caller's.
            since, task, root, limit = match.groups()
            narrowed = f" AND ROOT_TASK_ID = '{root}'" if root else ""
            return (f"(SELECT * FROM (SELECT STATE, SCHEDULED_TIME, COMPLETED_TIME, ERROR_CODE, ERROR_MESSAGE, "
                    f"SCHEMA_NAME, DATABASE_NAME FROM {RUNS_TABLE} WHERE NAME = '{task}'{narrowed} AND "
                    f"SCHEDULED_TIME >= {since} ORDER BY SCHEDULED_TIME DESC LIMIT {int(limit)}))")

        described = re.match(r"^DESCRIBE PIPE ([A-Z0-9_$.]+)$", sql.strip())
        if described and described.group(1) in self.definitions:
            text = self.definitions[described.group(1)].replace("'", "''")
            return f"SELECT '{described.group(1)}' AS \"name\", '{text}' AS \"definition\""
        if sql.startswith("SHOW TASKS"):
            database = sql.split()[-1] if sql.split()[-1] != "DATABASE" else "SYNC"
            return (f"SELECT NAME AS name, SCHEMA_NAME AS schema_name, STATE AS state, SCHEDULE AS schedule, "
                    f"PREDECESSORS AS predecessors, ID AS id, DATABASE_NAME AS database_name, LAST_SUSPENDED_REASON "
                    f"AS last_suspended_reason FROM {TASKS_TABLE} WHERE COALESCE(DATABASE_NAME, 'SYNC') = '{database}'")
        return _TASK_HISTORY.sub(runs, _COPY_HISTORY.sub(history, _PIPE_STATUS.sub(status, sql)))


def _refusal(code: str, sqlstate: str, message: str) -> dict[str, Any]:
    return {"data": {"errorCode": code, "sqlState": sqlstate}, "code": code, "message": message, "success": False}


def _root(cur: Any, schema: str, name: str) -> str:
    """The task graph's root: predecessors followed up to a task that has none (one database and schema)."""
    seen = {name}
    while True:
        cur.execute(f"SELECT PREDECESSORS FROM {TASKS_TABLE} WHERE SCHEMA_NAME = %s AND NAME = %s", (schema, name))
        row = cur.fetchone()
        parents = json.loads(row[0]) if row and row[0] else []
        parent = next((p.replace('"', "").split(".")[-1].upper() for p in parents), None)
        if parent is None or parent in seen:
            return name
        seen.add(parent)
        name = parent
