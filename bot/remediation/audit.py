"""The audit trail: every approval transition, appended to a bounded Redis stream (by the same Lua
scripts that make the transitions, so a transition never happens unrecorded)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STREAM = "syncbot:audit"
MAXLEN = 10_000


@dataclass(frozen=True)
class AuditEntry:
    id: str
    at: float
    request: str
    action: str
    table: str
    event: str
    user: str
    detail: str


def read(redis: Any, table: str | None = None, limit: int = 100) -> list[AuditEntry]:
    """Newest first, optionally for one table."""
    found: list[AuditEntry] = []
    for entry_id, fields in redis.xrevrange(STREAM, count=MAXLEN):
        data = {k.decode() if isinstance(k, bytes) else k: v.decode() if isinstance(v, bytes) else v
                for k, v in fields.items()}
        if table and data.get("table", "").lower() != table.lower():
            continue
        found.append(AuditEntry(entry_id.decode() if isinstance(entry_id, bytes) else entry_id,
                                float(data.get("at", 0)), data.get("request", ""), data.get("action", ""),
                                data.get("table", ""), data.get("event", ""), data.get("user", ""),
                                data.get("detail", "")))
        if len(found) >= limit:
            break
    return found
