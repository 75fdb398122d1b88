"""Aurora PostgreSQL through psycopg, as a read-only role: column catalog and replication slots."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from . import GatewayError, NotFound

COLUMNS_SQL = """
SELECT column_name, data_type, character_maximum_length, numeric_precision, numeric_scale
FROM information_schema.columns
WHERE table_schema = %s AND table_name = %s
ORDER BY ordinal_position
"""

# pg_current_wal_lsn() fails on a replica; DMS reads from the writer, which is what we point at.
SLOTS_SQL = """
SELECT slot_name, plugin, slot_type, active, wal_status,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint AS retained_bytes
FROM pg_replication_slots
WHERE slot_type = 'logical'
ORDER BY slot_name
"""


@dataclass(frozen=True)
class PgColumn:
    name: str
    data_type: str
    char_length: int | None = None
    precision: int | None = None
    scale: int | None = None


@dataclass(frozen=True)
class Slot:
    name: str
    plugin: str
    active: bool
    wal_status: str
    retained_bytes: int | None


class AuroraGateway:
    def __init__(self, dsn: str, connect_timeout: int = 5, statement_timeout_ms: int = 10_000):
        self._dsn = dsn
        self._kwargs = {
            "connect_timeout": connect_timeout,
            "options": f"-c statement_timeout={statement_timeout_ms}",
            "autocommit": True,
        }
        self.calls = 0

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple[Any, ...]]:
        self.calls += 1
        try:
            with psycopg.connect(self._dsn, **self._kwargs) as conn:
                return conn.execute(sql, params).fetchall()
        except psycopg.Error as exc:
            # psycopg messages can echo the DSN's host but never its password; keep the first line.
            raise GatewayError(str(exc).strip().splitlines()[0][:300] or type(exc).__name__) from None

    def columns(self, schema: str, table: str) -> list[PgColumn]:
        rows = self._rows(COLUMNS_SQL, (schema, table))
        if not rows:
            raise NotFound(f"Aurora table {schema}.{table} not found (or not visible to this role)")
        return [PgColumn(*row) for row in rows]

    def replication_slots(self) -> list[Slot]:
        return [Slot(name, plugin, active, wal or "", retained) for name, plugin, _, active, wal, retained
                in self._rows(SLOTS_SQL)]
