"""Snowflake through snowflake-connector-python. Every identifier is bound (IDENTIFIER(%s) or a
string literal), never spliced into SQL; the values come from the validated catalog anyway."""
from __future__ import annotations

import json
import queue
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Iterator

from . import GatewayError, NotFound

FAILED_STATUSES = ("load failed", "partially loaded")


@dataclass(frozen=True)
class PipeStatus:
    execution_state: str
    pending_file_count: int = 0
    last_ingested_at: datetime | None = None
    last_ingested_file: str = ""
    oldest_pending_at: datetime | None = None
    error: str = ""


@dataclass(frozen=True)
class LoadRecord:
    file_name: str
    status: str
    row_count: int
    first_error_message: str
    last_load_time: datetime | None

    @property
    def failed(self) -> bool:
        return self.status.lower() in FAILED_STATUSES


PIPE_STATUS_SQL = "SELECT SYSTEM$PIPE_STATUS(%s)"
COPY_HISTORY_SQL = (
    "SELECT FILE_NAME, STATUS, ROW_COUNT, FIRST_ERROR_MESSAGE, LAST_LOAD_TIME "
    "FROM TABLE(INFORMATION_SCHEMA.COPY_HISTORY(TABLE_NAME=>%s, "
    "START_TIME=>DATEADD(hours, -%s, CURRENT_TIMESTAMP()))) "
    "ORDER BY LAST_LOAD_TIME DESC LIMIT 1000"
)
COLUMNS_SQL = (
    "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position"
)
NEWEST_SQL = "SELECT MAX(IDENTIFIER(%s)) FROM IDENTIFIER(%s)"


class SnowflakeGateway:
    """Holds at most `pool_size` open connections: bounded concurrency towards the warehouse."""

    def __init__(self, connect: Callable[[], Any], pool_size: int = 4):
        self._connect = connect
        self._idle: queue.LifoQueue = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(pool_size)
        self.calls = 0

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self._connect()
            try:
                cur = conn.cursor()
                yield cur
                cur.close()
            except Exception:
                _close_quietly(conn)  # a broken connection is not returned to the pool
                raise
            self._idle.put(conn)

    def query(self, sql: str, params: tuple = ()) -> list[tuple]:
        self.calls += 1
        with self._cursor() as cur:
            try:
                cur.execute(sql, params)
                return list(cur.fetchall())
            except Exception as exc:
                raise _domain_error(exc) from None

    def execute(self, sql: str, params: tuple = ()) -> None:
        self.query(sql, params)

    def columns(self, table: str) -> dict[str, str]:
        schema, name = table.split(".")[-2:]
        rows = self.query(COLUMNS_SQL, (schema.upper(), name.upper()))
        if not rows:
            raise NotFound(f"Snowflake table {table} not found (or not visible to this role)")
        return {col.upper(): dtype.upper() for col, dtype in rows}

    def newest(self, table: str, column: str) -> datetime | None:
        rows = self.query(NEWEST_SQL, (column, table))
        value = rows[0][0] if rows else None
        return _utc(value) if isinstance(value, datetime) else None

    def pipe_status(self, pipe: str) -> PipeStatus:
        rows = self.query(PIPE_STATUS_SQL, (pipe,))
        return parse_pipe_status(rows[0][0])

    def copy_history(self, table: str, hours: int = 4) -> list[LoadRecord]:
        rows = self.query(COPY_HISTORY_SQL, (table, int(hours)))
        return [parse_load_record(row) for row in rows]


def parse_pipe_status(text: str) -> PipeStatus:
    data = json.loads(text)
    return PipeStatus(
        execution_state=str(data.get("executionState", "UNKNOWN")).upper(),
        pending_file_count=int(data.get("pendingFileCount", 0) or 0),
        last_ingested_at=_parse_ts(data.get("lastIngestedTimestamp")),
        last_ingested_file=data.get("lastIngestedFilePath", "") or "",
        oldest_pending_at=_parse_ts(data.get("oldestFileTimestamp")),
        error=str(data.get("error") or data.get("fault") or ""),
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
    msg = str(getattr(exc, "raw_msg", None) or exc).splitlines()[0][:300]
    if errno == 2003 or "does not exist" in msg.lower():
        return NotFound(msg)
    return GatewayError(msg)


def _close_quietly(conn: Any) -> None:
    try:
        conn.close()
    except Exception:  # noqa: BLE001 - closing a broken connection may itself fail
        pass
