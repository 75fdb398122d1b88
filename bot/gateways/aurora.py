"""Aurora PostgreSQL through psycopg, as a read-only role: column catalog and replication slots."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

import psycopg

from ..redaction import redact
from . import GatewayError, NotFound

COLUMNS_SQL = """
SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s
ORDER BY ordinal_position
"""

# Many tables in one query: the wanted (schema, table) pairs arrive as two bound text arrays.
COLUMNS_MANY_SQL = """
SELECT c.table_schema, c.table_name, c.column_name, c.data_type, c.character_maximum_length,
       c.numeric_precision, c.numeric_scale
FROM information_schema.columns c
JOIN unnest(%s::text[], %s::text[]) AS wanted(table_schema, table_name)
  ON c.table_schema = wanted.table_schema AND c.table_name = wanted.table_name
ORDER BY c.table_schema, c.table_name, c.ordinal_position
"""

# pg_current_wal_lsn() fails on a replica; DMS reads from the writer, which is what we point at.
# wal_status and safe_wal_size came with PostgreSQL 13 (its pg_replication_slots page; 11 and 12 have
# neither): before 13 the same row without them, so the slot check still reports what it can.
SLOTS_SQL = """
SELECT slot_name, plugin, database, active, wal_status, safe_wal_size,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes
FROM pg_replication_slots
WHERE slot_type = 'logical'
ORDER BY slot_name
"""
SLOTS_SQL_BEFORE_13 = """
SELECT slot_name, plugin, database, active, NULL::text, NULL::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes
FROM pg_replication_slots
WHERE slot_type = 'logical'
ORDER BY slot_name
"""
WAL_STATUS_SINCE = 130000  # server_version_num


@dataclass(frozen=True)
class PgColumn:
    name: str
    data_type: str
    char_length: int | None = None
    precision: int | None = None
    scale: int | None = None


# Row counts for many tables in one query. Below EXACT_BELOW_BYTES of heap a table is counted exactly
# (query_to_xml runs the count(*) for that row only, with the names quoted by format('%I')); above
# it the planner's estimate (reltuples, or the statistics collector's n_live_tup before the first
# ANALYZE) is used: a count(*) of a big table on the writer is not worth it.
EXACT_BELOW_BYTES = 32 * 1024**2
ROW_COUNTS_SQL = """
SELECT w.table_schema, w.table_name, c.reltuples::bigint, s.n_live_tup,
       CASE WHEN c.relkind = 'r' AND pg_relation_size(c.oid) < %s THEN
         (xpath('/row/n/text()', query_to_xml(format('SELECT count(*) AS n FROM %%I.%%I', w.table_schema,
                                                      w.table_name), false, true, '')))[1]::text::bigint
       END
FROM unnest(%s::text[], %s::text[]) AS w(table_schema, table_name)
JOIN pg_namespace n ON n.nspname = w.table_schema
JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = w.table_name AND c.relkind IN ('r', 'p')
LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid
"""


@dataclass(frozen=True)
class RowCount:
    rows: int | None  # None: never analysed and too big to count
    exact: bool


@dataclass(frozen=True)
class Slot:
    name: str
    plugin: str
    active: bool
    wal_status: str  # "" where the server does not say (PostgreSQL 11 and 12)
    retained_bytes: int | None
    database: str = ""
    safe_wal_size: int | None = None  # bytes left before the slot is lost; None: no limit or not said


class AuroraGateway:
    def __init__(self, dsn: str, connect_timeout: int = 5, statement_timeout_ms: int = 10_000,
                 connect: Callable[..., Any] = psycopg.connect):
        self._dsn, self._connect = dsn, connect
        self._kwargs = {
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout_ms}",
            "autocommit": True,
        }

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple[Any, ...]]:
        return self._session(lambda conn: conn.execute(sql, params).fetchall())

    def _session(self, work: Callable[[Any], Any]) -> Any:
        """One login for `work(connection)`."""
        try:
            with self._connect(self._dsn, **self._kwargs) as conn:
                return work(conn)
        except psycopg.Error as exc:
            # libpq quotes what it could not parse, which can be the password: redacted before it is
            # cut to its first line, so no cut can leave part of a secret unrecognised.
            raise GatewayError(redact(str(exc)).strip().splitlines()[0][:300] or type(exc).__name__) from None

    def columns(self, schema: str, table: str) -> list[PgColumn]:
        rows = self._rows(COLUMNS_SQL, (schema, table))
        if not rows:
            raise NotFound(f"Aurora table {schema}.{table} not found (or not visible to this role)")
        return [PgColumn(*row) for row in rows]

    def columns_many(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], list[PgColumn] | GatewayError]:
        """(schema, table) -> its columns, for many tables in one query; a table not listed is NotFound."""
        found: dict[tuple[str, str], list[PgColumn]] = {}
        for schema, table, *column in self._rows(COLUMNS_MANY_SQL, ([s for s, _ in tables], [t for _, t in tables])):
            found.setdefault((schema, table), []).append(PgColumn(*column))
        return {(schema, table): found.get((schema, table)) or NotFound(
                    f"Aurora table {schema}.{table} not found (or not visible to this role)")
                for schema, table in tables}

    def row_counts(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], RowCount | GatewayError]:
        """(schema, table) -> its row count, exact for small tables, estimated for big ones."""
        found = {}
        for schema, table, reltuples, live, exact in self._rows(
                ROW_COUNTS_SQL, (EXACT_BELOW_BYTES, [s for s, _ in tables], [t for _, t in tables])):
            if exact is not None:
                found[(schema, table)] = RowCount(int(exact), True)
            else:
                estimate = reltuples if reltuples is not None and reltuples >= 0 else live
                found[(schema, table)] = RowCount(None if estimate is None else int(estimate), False)
        return {key: found.get(key) or NotFound(f"Aurora table {key[0]}.{key[1]} not found (or not visible to this role)")
                for key in tables}

    def replication_slots(self, server_version: int | None = None) -> list[Slot]:
        """Every logical slot; `server_version` (server_version_num) is for tests of older servers."""
        def read(conn: Any) -> list[tuple]:
            version = server_version or int(conn.execute("SHOW server_version_num").fetchone()[0])
            return conn.execute(SLOTS_SQL if version >= WAL_STATUS_SINCE else SLOTS_SQL_BEFORE_13).fetchall()

        return [Slot(name, plugin, active, wal or "", retained, database or "", safe)
                for name, plugin, database, active, wal, safe, retained in self._session(read)]

    def row_estimate(self, schema: str, table: str) -> int | None:
        """The planner's row estimate: a count(*) of a big table on the writer is not worth it."""
        rows = self._rows("SELECT c.reltuples::bigint FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                          "WHERE n.nspname = %s AND c.relname = %s", (schema, table))
        return int(rows[0][0]) if rows and rows[0][0] is not None and rows[0][0] >= 0 else None

    def row_count(self, schema: str, table: str) -> int | None:
        """One table's rows, counted as row_counts counts them (exact when small, else the estimate)."""
        found = self.row_counts([(schema, table)])[(schema, table)]
        if isinstance(found, GatewayError):
            raise found
        return found.rows

    def vacuum_stats(self, sources: list[str]) -> dict[str, VacuumStats]:
        """pg_stat_user_tables for the catalog's tables ("schema.table", lower case), in one query."""
        rows = self._rows(VACUUM_SQL, ([s.lower() for s in sources],))
        return {f"{schema}.{table}": VacuumStats(schema, table, int(live or 0), int(dead or 0), last, auto, size)
                for schema, table, live, dead, last, auto, size in rows}


# n_live_tup/n_dead_tup are the statistics collector's estimates, which is what autovacuum itself reads.
VACUUM_SQL = """
SELECT schemaname, relname, n_live_tup, n_dead_tup, last_vacuum, last_autovacuum,
       pg_total_relation_size(relid)
FROM pg_stat_user_tables
WHERE schemaname || '.' || relname = ANY(%s)
"""


@dataclass(frozen=True)
class VacuumStats:
    schema: str
    table: str
    live_tuples: int
    dead_tuples: int
    last_vacuum: datetime | None
    last_autovacuum: datetime | None
    total_bytes: int | None = None

    @property
    def last_vacuumed(self) -> datetime | None:
        """The later of a manual VACUUM and autovacuum."""
        return max((t for t in (self.last_vacuum, self.last_autovacuum) if t is not None), default=None)
