"""PostgreSQL -> Snowflake column types, as DMS writes them to CSV and Snowpipe loads them."""
from __future__ import annotations

from ..gateways.aurora import PgColumn

_SIMPLE = {
    "smallint": "NUMBER(5,0)",
    "integer": "NUMBER(10,0)",
    "bigint": "NUMBER(19,0)",
    "real": "FLOAT",
    "double precision": "FLOAT",
    "boolean": "BOOLEAN",
    "text": "VARCHAR",
    "uuid": "VARCHAR(36)",
    "date": "DATE",
    "time without time zone": "TIME",
    "time with time zone": "VARCHAR",  # Snowflake TIME has no zone; keep the text
    "timestamp without time zone": "TIMESTAMP_NTZ",
    "timestamp with time zone": "TIMESTAMP_TZ",
    "interval": "VARCHAR",
    "json": "VARIANT",
    "jsonb": "VARIANT",
    "bytea": "BINARY",
    "money": "NUMBER(19,2)",
    "inet": "VARCHAR",
    "cidr": "VARCHAR",
    "macaddr": "VARCHAR",
    "xml": "VARCHAR",
    "ARRAY": "ARRAY",
    "USER-DEFINED": "VARCHAR",  # enums and domains arrive as their text
}


def snowflake_type(col: PgColumn) -> str:
    dtype = col.data_type
    if dtype in ("character varying", "character"):
        base = "VARCHAR" if dtype == "character varying" else "CHAR"
        return f"{base}({col.char_length})" if col.char_length else "VARCHAR"
    if dtype == "numeric":
        # Unconstrained numeric has no fixed scale: FLOAT would lose digits, so keep the widest NUMBER.
        if col.precision is None:
            return "NUMBER(38,10)"
        return f"NUMBER({min(col.precision, 38)},{col.scale or 0})"
    return _SIMPLE.get(dtype, "VARCHAR")
