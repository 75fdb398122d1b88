"""Snowflake through snowflake-connector-python. Every identifier is bound (IDENTIFIER(%s) or a
string literal), never spliced into SQL; the values come from the validated catalog anyway."""
from __future__ import annotations

import json
import math
import queue
import re
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from snowflake.connector.errorcode import (
    ER_CONNECTION_IS_CLOSED, ER_FAILED_TO_CONNECT_TO_DB, ER_FAILED_TO_RENEW_SESSION,
)
from snowflake.connector.errors import Error as ConnectorError, InterfaceError, OperationalError

from . import GatewayError, NotFound

FAILED_STATUSES = ("load failed", "partially loaded")


class Refused(GatewayError):
    """Snowflake refused the statement itself (SQLSTATE class 42: an invalid identifier, a missing
    privilege), as opposed to failing to run it (timeout, connection)."""


@dataclass(frozen=True)
class PipeStatus:
    execution_state: str
    pending_file_count: int = 0
    last_ingested_at: datetime | None = None
    last_ingested_file: str = ""
    oldest_pending_at: datetime | None = None
    error: str = ""
    fault: str = ""
    last_error_at: datetime | None = None  # lastPipeErrorTimestamp: when `error` happened


@dataclass(frozen=True)
class LoadRecord:
    file_name: str
    status: str
    row_count: int
    first_error_message: str
    last_load_time: datetime | None
    pipe: str = ""  # PIPE_NAME: the pipe that made this attempt; "" for a bulk COPY

    @property
    def failed(self) -> bool:
        return self.status.lower() in FAILED_STATUSES


def latest_attempts(history: list[LoadRecord]) -> list[LoadRecord]:
    """COPY_HISTORY returns one row per load attempt, Snowpipe's and bulk COPY's alike
    (https://docs.snowflake.com/en/sql-reference/functions/copy_history): a file's state is its newest
    attempt's. Newest first, one record per file."""
    newest: dict[str, LoadRecord] = {}
    never = datetime.min.replace(tzinfo=timezone.utc)
    for record in history:
        seen = newest.get(record.file_name)
        if seen is None or (record.last_load_time or never) > (seen.last_load_time or never):
            newest[record.file_name] = record
    return sorted(newest.values(), key=lambda r: r.last_load_time or never, reverse=True)


@dataclass(frozen=True)
class SfColumn:
    """A column as Snowflake's information_schema describes it (DATA_TYPE is TEXT for every VARCHAR)."""

    name: str
    data_type: str
    char_length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @property
    def shown(self) -> str:
        if self.data_type == "TEXT":
            return f"VARCHAR({self.char_length})" if self.char_length else "VARCHAR"
        if self.data_type == "NUMBER" and self.precision is not None:
            return f"NUMBER({self.precision},{self.scale or 0})"
        return self.data_type


@dataclass(frozen=True)
class TaskState:
    """One row of SHOW TASKS: `state` is started or suspended; `schedule` e.g. '1 MINUTE' or
    'USING CRON 0 * * * * UTC', empty for a child task that runs after its predecessor."""

    name: str  # SCHEMA.NAME as the catalog writes it, upper case
    state: str
    schedule: str = ""
    predecessors: str = ""
    id: str = ""
    # last_suspended_reason (SHOW TASKS since the 2023_08 bundle): USER_SUSPENDED, SUSPENDED_DUE_TO_ERRORS,
    # GRANT_OWNERSHIP, … (https://docs.snowflake.com/en/release-notes/bcr-bundles/2023_08/bcr-1385-1414)
    suspended_reason: str = ""
    # The root of its task graph, as SHOW TASKS lists it (its own name and id for a standalone task).
    root: str = ""
    root_id: str = ""
    root_state: str = ""

    @property
    def child(self) -> bool:
        return bool(self.root) and self.root != self.name


@dataclass(frozen=True)
class TaskRun:
    """One row of INFORMATION_SCHEMA.TASK_HISTORY: STATE is SCHEDULED, EXECUTING, SUCCEEDED, FAILED,
    CANCELLED, SKIPPED or FAILED_AND_AUTO_SUSPENDED."""

    state: str
    scheduled_at: datetime | None
    completed_at: datetime | None = None
    error_code: str = ""
    error_message: str = ""


PIPE_STATUS_SQL = "SELECT SYSTEM$PIPE_STATUS(%s)"
COPY_HISTORY_SQL = (
    "SELECT FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME "
    "FROM TABLE(INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME=>%s, "
    "START_TIME=>DATEADD(hours, -%s, CURRENT_TIMESTAMP()))) "
    "ORDER BY LAST_LOAD_TIME DESC LIMIT 1000"
)
# Which full-load files the pipe has made an attempt at in the 14 days COPY_HISTORY and a pipe's load
# metadata both cover: Snowpipe will not load a file of the same name again, even rewritten with other
# contents (https://docs.snowflake.com/en/user-guide/data-load-snowpipe-intro, "Load history").
PIPE_LOADS_DAYS = 14
PIPE_LOADS_SQL = (
    "SELECT FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME, PIPE_NAME "
    "FROM TABLE(INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME=>%s, "
    "START_TIME=>DATEADD(days, -%s, CURRENT_TIMESTAMP()))) "
    "WHERE PIPE_SCHEMA_NAME = %s AND PIPE_NAME = %s AND FILE_NAME LIKE %s ORDER BY LAST_LOAD_TIME DESC"
)
COLUMNS_SQL = (
    "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"
)

# Multi-table rounds: one statement answers for many tables, names still bound one %s each. How many
# items one statement carries is the caller's choice (bot.diagnostics.runner.CHUNK, the one place).
_HISTORY_BRANCH = (
    "SELECT * FROM (SELECT %s AS SYNCBOT_TABLE, FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME "
    "FROM TABLE(INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME=>%s, "
    "START_TIME=>DATEADD(hours, -%s, CURRENT_TIMESTAMP()))) "
    "ORDER BY LAST_LOAD_TIME DESC LIMIT 1000)"
)


# Column types: lengths, precision and scale, for the Schema Mismatch check.
COLUMN_TYPES_BRANCH = "(%s, %s)"


def column_types_many_sql(count: int) -> str:
    return ("SELECT table_schema, table_name, column_name, data_type, character_maximum_length, numeric_precision, "
            "numeric_scale FROM information_schema.columns WHERE (table_schema, table_name) IN ("
            + ", ".join([COLUMN_TYPES_BRANCH] * count) + ") ORDER BY table_schema, table_name, ordinal_position")


def row_counts_sql(count: int) -> str:
    """One row, one COUNT(*) per table: answered from Snowflake's metadata, no warehouse scan."""
    return "SELECT " + ", ".join(["(SELECT COUNT(*) FROM IDENTIFIER(%s))"] * count)


# SHOW TASKS takes no bound values; the database, when the catalog names one, is checked by ddl_name.
SHOW_TASKS_SQL = "SHOW TASKS IN DATABASE"
# The last runs of each task, each row labelled with the task it answers for. TASK_HISTORY covers the
# whole account, TASK_NAME takes only an unqualified name (a same-named task in a cloned DEV database
# answers too) and RESULT_LIMIT applies before any WHERE: so the call itself is narrowed to this task's
# graph with ROOT_TASK_ID, the id SHOW TASKS gives its root (a standalone task is its own root), and
# only this task's runs in this database come back
# (https://docs.snowflake.com/en/sql-reference/functions/task_history). The outer WHERE only repeats it.
TASK_RUNS = 5
_TASK_HISTORY_BRANCH = (
    "SELECT * FROM (SELECT %s AS SYNCBOT_TASK, STATE, SCHEDULED_TIME, COMPLETED_TIME, ERROR_CODE, ERROR_MESSAGE "
    "FROM TABLE(INFORMATION_SCHEMA.TASK_HISTORY(SCHEDULED_TIME_RANGE_START=>DATEADD(hours, -%s, CURRENT_TIMESTAMP()), "
    "TASK_NAME=>%s, ROOT_TASK_ID=>%s, RESULT_LIMIT=>50)) "
    "WHERE SCHEMA_NAME = %s AND STATE <> 'SCHEDULED' ORDER BY SCHEDULED_TIME DESC LIMIT " + str(TASK_RUNS) + ")"
)
TASK_HISTORY_HOURS = 24


def task_histories_sql(count: int) -> str:
    return " UNION ALL ".join([_TASK_HISTORY_BRANCH] * count)


def pipe_statuses_sql(count: int) -> str:
    """One row, one SYSTEM$PIPE_STATUS column per pipe, in the order given."""
    return "SELECT " + ", ".join(["SYSTEM$PIPE_STATUS(%s)"] * count)


def copy_histories_sql(count: int) -> str:
    """COPY_HISTORY of each table, each row labelled with the table it answers for."""
    return " UNION ALL ".join([_HISTORY_BRANCH] * count)


def newest_many_sql(count: int) -> str:
    """One row, one scalar MAX() per table: each column keeps its own type (a UNION ALL would force
    TIMESTAMP_NTZ and TIMESTAMP_TZ freshness columns into one)."""
    return "SELECT " + ", ".join(["(SELECT MAX(IDENTIFIER(%s)) FROM IDENTIFIER(%s))"] * count)


class SnowflakeGateway:
    """Holds at most `pool_size` open connections: bounded concurrency towards the warehouse.

    `read_timeout_s`: reads (query()) are cancelled by the connector after this long. A diagnosis
    stops waiting at its deadline, but without this a warehouse gone slow would keep the abandoned
    statements running and holding the pool, so the next diagnosis queues behind them. Changes
    (execute(): TRUNCATE, COPY, ALTER) are never cut short."""

    def __init__(self, connect: Callable[[], Any], pool_size: int = 4, read_timeout_s: float | None = None):
        self._connect = connect
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self._read_timeout = {"timeout": max(1, math.ceil(read_timeout_s))} if read_timeout_s else {}
        self._roots: dict[str, str] = {}  # task (upper case, as given) -> its graph's root task id

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._login()
            try:
                cur = conn.cursor()
                try:
                    yield cur
                finally:
                    _close_quietly(cur)
            except BaseException as exc:
                if connection_broken(exc):
                    _close_quietly(conn)  # a broken connection is not returned to the pool
                else:
                    self._idle.put(conn)  # a refused statement leaves the session as it was: no new login
                raise
            self._idle.put(conn)

    def _login(self) -> Any:
        try:
            return self._connect()
        except (ConnectorError, OSError) as exc:  # the connector's errors name the host, never the password
            raise GatewayError(f"could not connect: {_first_line(exc)}") from None

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._run(sql, params, self._read_timeout)

    def execute(self, sql: str, params: tuple = ()) -> None:
        self._run(sql, params, {})

    def _run(self, sql: str, params: tuple, timeout: dict[str, int]) -> list[tuple]:
        try:
            with self._cursor() as cur:  # it sees the connector's own error, to judge the connection
                cur.execute(sql, params, **timeout)
                return list(cur.fetchall())
        except GatewayError:
            raise
        except Exception as exc:
            raise _domain_error(exc) from None

    def columns(self, table: str) -> dict[str, str]:
        schema, name = table.split(".")[-2:]
        rows = self.query(COLUMNS_SQL, (schema.upper(), name.upper()))
        if not rows:
            raise NotFound(f"Snowflake table {table} not found (or not visible to this role)")
        return {col.upper(): dtype.upper() for col, dtype in rows}

    def pipe_status(self, pipe: str) -> PipeStatus:
        rows = self.query(PIPE_STATUS_SQL, (pipe,))
        return parse_pipe_status(rows[0][0])

    def copy_history(self, table: str, hours: int = 4) -> list[LoadRecord]:
        rows = self.query(COPY_HISTORY_SQL, (table, int(hours)))
        return [parse_load_record(row) for row in rows]

    def pipe_loads(self, table: str, pipe: str, days: int = PIPE_LOADS_DAYS) -> list[LoadRecord]:
        """Every attempt `pipe` made at a full-load file (LOAD…) into `table` in the last `days` days."""
        schema, name = pipe.upper().split(".")[-2:]
        rows = self.query(PIPE_LOADS_SQL, (table, int(days), schema, name, "%LOAD%"))
        return [replace(parse_load_record(tuple(row[:5])), pipe=str(row[5] or "")) for row in rows]

    # Multi-table reads, one statement for every item given. Each answers every item: its value, or
    # the GatewayError that concerns that item alone (a missing pipe or table). An error that
    # concerns the whole statement (Snowflake down, a timeout) is raised.

    def pipe_statuses(self, pipes: list[str]) -> dict[str, PipeStatus | GatewayError]:
        def run(chunk: list[str]) -> dict[str, PipeStatus]:
            [row] = self.query(pipe_statuses_sql(len(chunk)), tuple(chunk))
            return {pipe: parse_pipe_status(text) for pipe, text in zip(chunk, row)}

        return self._isolating(pipes, run)

    def copy_histories(self, tables: list[str], hours: int = 4) -> dict[str, list[LoadRecord] | GatewayError]:
        def run(chunk: list[str]) -> dict[str, list[LoadRecord]]:
            params = tuple(p for table in chunk for p in (table, table, int(hours)))
            found: dict[str, list[LoadRecord]] = {table: [] for table in chunk}
            for label, *record in self.query(copy_histories_sql(len(chunk)), params):
                found[label].append(parse_load_record(tuple(record)))
            return found

        return self._isolating(tables, run)

    def newest_many(self, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], datetime | None | GatewayError]:
        """(table, column) -> the column's newest value (None for an empty table)."""
        def run(chunk: list[tuple[str, str]]) -> dict[tuple[str, str], datetime | None]:
            [row] = self.query(newest_many_sql(len(chunk)), tuple(p for table, column in chunk for p in (column, table)))
            return {pair: _utc(value) if isinstance(value, datetime) else None for pair, value in zip(chunk, row)}

        return self._isolating(pairs, run)

    def column_types(self, table: str) -> dict[str, SfColumn]:
        found = self.column_types_many([table])[table]
        if isinstance(found, GatewayError):
            raise found
        return found

    def column_types_many(self, tables: list[str]) -> dict[str, dict[str, SfColumn] | GatewayError]:
        """Column name (upper case) -> its type with length, precision and scale, for many tables in one
        information_schema statement; a table it does not list is NotFound."""
        def run(chunk: list[str]) -> dict[str, dict[str, SfColumn] | GatewayError]:
            keys = {table: tuple(part.upper() for part in table.split(".")[-2:]) for table in chunk}
            found: dict[tuple[str, str], dict[str, SfColumn]] = {}
            params = tuple(p for key in keys.values() for p in key)
            for schema, name, column, dtype, length, precision, scale in self.query(
                    column_types_many_sql(len(chunk)), params):
                found.setdefault((schema.upper(), name.upper()), {})[column.upper()] = SfColumn(
                    column.upper(), dtype.upper(), _int(length), _int(precision), _int(scale))
            return {table: found.get(key) or NotFound(f"Snowflake table {table} not found (or not visible to this role)")
                    for table, key in keys.items()}

        return self._isolating(tables, run)

    def row_counts(self, tables: list[str]) -> dict[str, int | GatewayError]:
        def run(chunk: list[str]) -> dict[str, int]:
            [row] = self.query(row_counts_sql(len(chunk)), tuple(chunk))
            return {table: int(value or 0) for table, value in zip(chunk, row)}

        return self._isolating(tables, run)

    def task_states(self, tasks: list[str]) -> dict[str, TaskState | None]:
        """SHOW TASKS once per database the tasks live in; a task it does not list is None (dropped,
        or invisible to this role)."""
        by_db: dict[str, list[str]] = {}
        for task in tasks:
            parts = task.split(".")
            by_db.setdefault(parts[0].upper() if len(parts) == 3 else "", []).append(task)
        found: dict[str, TaskState | None] = {}
        for database, names in by_db.items():
            sql = SHOW_TASKS_SQL + (f" {ddl_name(database, parts=1)}" if database else "")
            listed = {f"{row['schema_name']}.{row['name']}".upper(): row for row in self._described(sql)}
            for task in names:
                key = ".".join(task.split(".")[-2:]).upper()
                found[task] = None if key not in listed else task_state(task.upper(), key, listed)
                if found[task] is not None:
                    self._roots[task.upper()] = found[task].root_id  # type: ignore[union-attr]
        return found

    def task_histories(self, tasks: list[str], hours: int = TASK_HISTORY_HOURS) -> dict[str, list[TaskRun] | GatewayError]:
        """The last runs of each task (newest first), one statement for the tasks given. Each task's root id
        comes from the last SHOW TASKS (task ids change only when a task is recreated); a task not seen yet
        is listed first, and one SHOW TASKS does not list answers no runs."""
        unseen = [t for t in tasks if t.upper() not in self._roots]
        known = self.task_states(unseen) if unseen else {}
        listed = [t for t in tasks if known.get(t, True) is not None]
        empty: dict[str, list[TaskRun] | GatewayError] = {t: [] for t in tasks if t not in listed}

        def run(chunk: list[str]) -> dict[str, list[TaskRun]]:
            params = tuple(p for task in chunk for p in (task, int(hours), task.split(".")[-1].upper(),
                                                         self._roots.get(task.upper(), ""),
                                                         task.split(".")[-2].upper()))
            found: dict[str, list[TaskRun]] = {task: [] for task in chunk}
            for label, state, scheduled, completed, code, message in self.query(task_histories_sql(len(chunk)), params):
                found[label].append(TaskRun(str(state or "").upper(), _ts(scheduled), _ts(completed),
                                            str(code or ""), str(message or "")))
            return found

        return {**empty, **(self._isolating(listed, run) if listed else {})}

    def _described(self, sql: str) -> list[dict[str, Any]]:
        """Rows of a SHOW command as dicts by lower-case column name (SHOW's columns vary by release)."""
        try:
            with self._cursor() as cur:
                cur.execute(sql, **self._read_timeout)
                names = [d[0].lower() for d in cur.description or ()]
                rows = cur.fetchall()
        except GatewayError:
            raise
        except Exception as exc:
            raise _domain_error(exc) from None
        return [dict(zip(names, row)) for row in rows]

    def _isolating(self, items: list, run: Callable[[list], dict]) -> dict:
        """One missing pipe or table makes Snowflake refuse the whole statement: halve it until the
        refusal is pinned on the items that cause it, so the others still get their answers."""
        try:
            return run(items)
        except (NotFound, Refused) as exc:
            if len(items) == 1:
                return {items[0]: exc}
            half = len(items) // 2
            return {**self._isolating(items[:half], run), **self._isolating(items[half:], run)}


    # Remediation -------------------------------------------------------------------------------
    # DDL takes object names as text: IDENTIFIER() is not accepted by every DDL command, so names
    # (which come only from the validated catalog or from Aurora's own catalog) are re-checked here.

    def row_count(self, table: str) -> int:
        return int(self.query("SELECT COUNT(*) FROM IDENTIFIER(%s)", (table,))[0][0])

    def truncate(self, table: str, timeout_s: int | None = None) -> None:
        """TRUNCATE, bounded on the server by STATEMENT_TIMEOUT_IN_SECONDS when `timeout_s` is given:
        Snowflake keeps running a statement whose client died, so only a server-side bound guarantees
        it cannot land after the caller's lease ran out."""
        statement = f"TRUNCATE TABLE {ddl_name(table)}"
        if timeout_s is None:
            self.execute(statement)
        else:
            self.execute_bounded(statement, int(timeout_s))

    def execute_bounded(self, sql: str, timeout_s: int) -> None:
        """`sql` on one connection whose session carries STATEMENT_TIMEOUT_IN_SECONDS = timeout_s."""
        try:
            with self._cursor() as cur:
                cur.execute(f"ALTER SESSION SET STATEMENT_TIMEOUT_IN_SECONDS = {timeout_s:d}")
                try:
                    cur.execute(sql)
                finally:
                    cur.execute("ALTER SESSION UNSET STATEMENT_TIMEOUT_IN_SECONDS")
        except GatewayError:
            raise
        except Exception as exc:
            raise _domain_error(exc) from None

    def set_pipe_paused(self, pipe: str, paused: bool) -> None:
        self.execute(f"ALTER PIPE {ddl_name(pipe)} SET PIPE_EXECUTION_PAUSED = {'TRUE' if paused else 'FALSE'}")

    def force_resume_pipe(self, pipe: str, override: str = "STALENESS_CHECK_OVERRIDE") -> None:
        """A stale pipe (paused longer than its notifications are kept), or one whose ownership was
        transferred while it was paused, refuses ALTER PIPE … RESUME
        (https://docs.snowflake.com/en/sql-reference/functions/system_pipe_force_resume)."""
        if override not in FORCE_RESUME_OVERRIDES:
            raise GatewayError(f"refusing unknown force-resume override {override[:40]!r}")
        self.execute(FORCE_RESUME_SQL if override == "STALENESS_CHECK_OVERRIDE" else OWNERSHIP_RESUME_SQL,
                     (ddl_name(pipe),))

    def resume_task(self, task: str) -> None:
        self.execute(f"ALTER TASK {ddl_name(task)} RESUME")

    def suspend_task(self, task: str) -> None:
        self.execute(f"ALTER TASK {ddl_name(task)} SUSPEND")

    def change_columns(self, changes: list[tuple[str, str, str, str]]) -> list[str]:
        """(table, column, "add" | "type", Snowflake type) in order. Every statement is built, and so
        checked, before the first runs: a refused name never leaves the tables half changed."""
        statements = [column_ddl(*change) for change in changes]
        for sql in statements:
            self.execute(sql)
        return statements

    def definition(self, kind: str, name: str) -> str:
        """The `definition` of a PIPE (its COPY statement) or a TASK (its SQL), from DESCRIBE."""
        if kind not in ("PIPE", "TASK"):
            raise ValueError(kind)
        statement = f"DESCRIBE {kind} {ddl_name(name)}"
        try:
            with self._cursor() as cur:
                cur.execute(statement, **self._read_timeout)
                names = [d[0].lower() for d in cur.description]
                row = cur.fetchone()
        except GatewayError:
            raise
        except Exception as exc:
            raise _domain_error(exc) from None
        if row is None or "definition" not in names:
            raise NotFound(f"{kind.lower()} {name} not found")
        return str(row[names.index("definition")])

    def load_files(self, pipe_definition: str, files: list[str]) -> None:
        """Reloads named files with the pipe's own COPY statement (ALTER PIPE REFRESH skips files
        already in the load history, failed ones included)."""
        names = relative_to_source(pipe_definition, files)
        for start in range(0, len(names), MAX_COPY_FILES):
            chunk = names[start:start + MAX_COPY_FILES]
            self.execute(copy_with_files(pipe_definition, len(chunk)), tuple(chunk))

    def current_role(self) -> str:
        """The role this connection acts as (what grants must name); also proves the login works."""
        rows = self.query("SELECT CURRENT_ROLE()")
        return str(rows[0][0]) if rows and rows[0][0] else ""


def task_state(task: str, key: str, listed: dict[str, dict[str, Any]]) -> TaskState:
    """One SHOW TASKS row, with the root of its graph found by following `predecessors` through the
    same listing (a task graph lives in one database and schema)."""
    row = listed[key]
    root, seen = key, {key}
    while True:
        parents = predecessor_names(listed[root].get("predecessors"))
        parent = next((p for p in parents if p in listed and p not in seen), None)
        if parent is None:
            break
        root = parent
        seen.add(parent)
    top = listed[root]
    return TaskState(task, str(row.get("state") or "").lower(), str(row.get("schedule") or ""),
                     ", ".join(predecessor_names(row.get("predecessors"))), str(row.get("id") or ""),
                     str(row.get("last_suspended_reason") or ""), root, str(top.get("id") or ""),
                     str(top.get("state") or "").lower())


def predecessor_names(value: Any) -> list[str]:
    """SHOW TASKS' predecessors: a JSON array of fully qualified names ('["SYNC"."STAGING"."ROOT"]' style
    or plain), as SCHEMA.NAME upper case."""
    text = str(value or "").strip()
    if not text:
        return []
    try:
        names = json.loads(text)
    except ValueError:
        names = text.strip("[]").split(",")
    if isinstance(names, str):
        names = [names]
    return [".".join(str(n).replace('"', "").strip().split(".")[-2:]).upper() for n in names if str(n).strip()]


FORCE_RESUME_SQL = "SELECT SYSTEM$PIPE_FORCE_RESUME(%s, 'STALENESS_CHECK_OVERRIDE')"
OWNERSHIP_RESUME_SQL = "SELECT SYSTEM$PIPE_FORCE_RESUME(%s, 'OWNERSHIP_TRANSFER_CHECK_OVERRIDE')"
FORCE_RESUME_OVERRIDES = ("STALENESS_CHECK_OVERRIDE", "OWNERSHIP_TRANSFER_CHECK_OVERRIDE")
MAX_COPY_FILES = 1000  # COPY INTO ... FILES accepts at most 1000 names
_DDL_PART = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]*$")
_SAFE_TYPE = re.compile(r"^[A-Z_]+(\(\d+(,\d+)?\))?$")


def ddl_name(name: str, parts: int = 3) -> str:
    pieces = name.split(".")
    if not 1 <= len(pieces) <= parts or not all(_DDL_PART.match(p) for p in pieces):
        raise GatewayError(f"refusing unsafe object name {name!r}")
    return ".".join(p.upper() for p in pieces)


# Snowflake's reserved keywords (docs: "Reserved & limited keywords"): a column named so must be quoted.
RESERVED = frozenset("""
ACCOUNT ALL ALTER AND ANY AS BETWEEN BY CASE CAST CHECK COLUMN CONNECT CONNECTION CONSTRAINT CREATE CROSS
CURRENT CURRENT_DATE CURRENT_TIME CURRENT_TIMESTAMP CURRENT_USER DATABASE DELETE DISTINCT DROP ELSE EXISTS
FALSE FOLLOWING FOR FROM FULL GRANT GROUP GSCLUSTER HAVING ILIKE IN INCREMENT INNER INSERT INTERSECT INTO IS
ISSUE JOIN LATERAL LEFT LIKE LOCALTIME LOCALTIMESTAMP MINUS NATURAL NOT NULL OF ON OR ORDER ORGANIZATION
QUALIFY REGEXP REVOKE RIGHT RLIKE ROW ROWS SAMPLE SCHEMA SELECT SET SOME START TABLE TABLESAMPLE THEN TO
TRIGGER TRUE TRY_CAST UNION UNIQUE UPDATE USING VALUES VIEW WHEN WHENEVER WHERE WINDOW WITH
""".split())


def plain_identifier(name: str) -> bool:
    """What Snowflake takes unquoted (and upper-cases), as DMS's column names arrive from PostgreSQL."""
    return bool(_DDL_PART.match(name)) and len(name) <= 255


def column_name(name: str) -> str:
    """A column as DDL names it: upper case, double-quoted when it is a reserved word (ORDER). Anything
    else than a plain identifier is refused, never quoted into SQL."""
    if not plain_identifier(name):
        raise GatewayError(f"refusing column name {name[:80]!r}: not a plain identifier")
    upper = name.upper()
    return f'"{upper}"' if upper in RESERVED else upper


def column_ddl(table: str, column: str, op: str, sf_type: str) -> str:
    if not _SAFE_TYPE.match(sf_type):
        raise GatewayError(f"refusing unexpected column type {sf_type[:80]!r}")
    if op == "add":
        return f"ALTER TABLE {ddl_name(table)} ADD COLUMN {column_name(column)} {sf_type}"
    if op == "type":
        return f"ALTER TABLE {ddl_name(table)} ALTER COLUMN {column_name(column)} SET DATA TYPE {sf_type}"
    raise GatewayError(f"refusing unknown column change {op[:20]!r}")


def copy_with_files(definition: str, count: int) -> str:
    """The pipe's COPY INTO with a FILES = (%s, ...) clause right after its FROM source, ready for
    bound file names. Literal % in the definition is doubled for the connector's pyformat binding."""
    sql = definition.strip().rstrip(";").replace("%", "%%")
    match = re.search(r"\bFROM\s+", sql, flags=re.I)
    if match is None or not re.match(r"^\s*COPY\s+INTO\b", sql, flags=re.I):
        raise GatewayError("the pipe's definition is not a COPY INTO ... FROM statement")
    start = match.end()
    end = _source_end(sql, start)
    clause = " FILES = (" + ", ".join(["%s"] * count) + ")"
    return sql[:end] + clause + sql[end:]


def relative_to_source(definition: str, files: list[str]) -> list[str]:
    """COPY_HISTORY names files from the stage's root; FILES = (...) is relative to the FROM path."""
    match = re.search(r"@[A-Za-z0-9_$.\"]+/([^\s)']*)", definition)
    path = match.group(1) if match else ""
    return [f[len(path):] if path and f.startswith(path) else f for f in files]


def _source_end(sql: str, start: int) -> int:
    if sql[start] == "(":  # FROM (SELECT ... FROM @stage): skip to the matching parenthesis
        depth = 0
        for i in range(start, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            if depth == 0:
                return i + 1
        raise GatewayError("unbalanced parentheses in the pipe's definition")
    match = re.match(r"@?[^\s]+", sql[start:])
    return start + match.end()

def parse_pipe_status(text: str) -> PipeStatus:
    data = json.loads(text)
    return PipeStatus(
        execution_state=str(data.get("executionState", "UNKNOWN")).upper(),
        pending_file_count=int(data.get("pendingFileCount", 0) or 0),
        last_ingested_at=_parse_ts(data.get("lastIngestedTimestamp")),
        last_ingested_file=data.get("lastIngestedFilePath", "") or "",
        oldest_pending_at=_parse_ts(data.get("oldestFileTimestamp")),
        error=str(data.get("error") or ""),
        fault=str(data.get("fault") or ""),
        last_error_at=_parse_ts(data.get("lastPipeErrorTimestamp")),
    )


def parse_load_record(row: tuple) -> LoadRecord:
    file_name, status, row_count, first_error, last_load = row
    return LoadRecord(
        file_name=file_name or "",
        status=status or "",
        row_count=int(row_count or 0),
        first_error_message=first_error or "",
        last_load_time=_utc(last_load) if isinstance(last_load, datetime) else None,
    )


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _ts(value: Any) -> datetime | None:
    return _utc(value) if isinstance(value, datetime) else None


def _parse_ts(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return _utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _domain_error(exc: Exception) -> GatewayError:
    # Connector errors carry an errno and a message without credentials; keep only those.
    errno = getattr(exc, "errno", None)
    msg = _first_line(exc)
    if errno == 2003 or "does not exist" in msg.lower():
        return NotFound(msg)
    if str(getattr(exc, "sqlstate", "") or "").startswith("42"):
        return Refused(msg)
    return GatewayError(msg)


def _first_line(exc: Exception) -> str:
    return (str(getattr(exc, "raw_msg", None) or exc).splitlines() or [type(exc).__name__])[0][:300]


# The connector's word that the session itself is gone: closed, never established, or expired past
# renewal (sqlstate class 08, "connection exception").
_BROKEN_ERRNOS = (ER_CONNECTION_IS_CLOSED, ER_FAILED_TO_CONNECT_TO_DB, ER_FAILED_TO_RENEW_SESSION)


def connection_broken(exc: BaseException) -> bool:
    """Whether the connection that raised exc must be dropped. Snowflake refusing a statement (a
    ProgrammingError: a missing object, a privilege, a cancelled read) leaves the session usable, and
    dropping it would cost a new login for every refusal. The connector's connection-level errors
    (OperationalError: the network, a timeout on the wire; InterfaceError; a closed or expired session)
    and anything the connector did not raise itself (the connection's state is then unknown) do."""
    if not isinstance(exc, ConnectorError):
        return True
    if isinstance(exc, (OperationalError, InterfaceError)) or exc.errno in _BROKEN_ERRNOS:
        return True
    return str(exc.sqlstate or "").startswith("08")


def _close_quietly(closable: Any) -> None:
    try:
        closable.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may itself fail
        pass
