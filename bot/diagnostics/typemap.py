"""PostgreSQL -> Snowflake column types, as DMS writes them to CSV and Snowpipe loads them."""
from __future__ import annotations

from dataclasses import dataclass

from ..gateways.aurora import PgColumn
from ..gateways.snowflake import SfColumn

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


# Families whose values load into one another (Snowpipe converts); any type loads into text.
_FAMILY = {"TEXT": "text", "VARCHAR": "text", "CHAR": "text", "STRING": "text",
           "NUMBER": "number", "DECIMAL": "number", "NUMERIC": "number", "INT": "number", "INTEGER": "number",
           "BIGINT": "number", "SMALLINT": "number", "FLOAT": "number", "DOUBLE": "number", "REAL": "number",
           "TIMESTAMP_NTZ": "time", "TIMESTAMP_TZ": "time", "TIMESTAMP_LTZ": "time", "TIMESTAMP": "time",
           "DATE": "time", "VARIANT": "semi", "OBJECT": "semi", "ARRAY": "semi"}
MAX_VARCHAR = 16_777_216  # Snowflake's VARCHAR with no length
MAX_PRECISION = 38


@dataclass(frozen=True)
class TypeGap:
    """An Aurora column Snowflake's column cannot hold. `target` is the type to SET in place; None
    when Snowflake cannot change the column in place (then `why` says so and what to do)."""

    column: str
    aurora: str
    snowflake: str
    target: str | None
    why: str


def aurora_type(col: PgColumn) -> str:
    if col.char_length:
        return f"{col.data_type}({col.char_length})"
    if col.data_type == "numeric" and col.precision is not None:
        return f"numeric({col.precision},{col.scale or 0})"
    return col.data_type


def type_gap(col: PgColumn, sf: SfColumn) -> TypeGap | None:
    """Whether Snowpipe can load this Aurora column into that Snowflake column, and the fix if not.
    Snowflake changes a type in place only to a longer VARCHAR or to a NUMBER of more precision and
    the same scale (ALTER TABLE … ALTER COLUMN, "Data Types"); anything else is a new column."""
    want = snowflake_type(col)
    base = want.split("(")[0]
    family, have = _FAMILY.get(base, base), _FAMILY.get(sf.data_type, sf.data_type)
    gap = lambda target, why: TypeGap(col.name.upper(), aurora_type(col), sf.shown, target, why)  # noqa: E731
    if have == "text":
        need = col.char_length if family == "text" and col.char_length else MAX_VARCHAR if family == "text" else None
        if need and (sf.char_length or MAX_VARCHAR) < need:
            target = f"VARCHAR({need})" if need < MAX_VARCHAR else "VARCHAR"
            return gap(target, f"values up to {need:,} characters do not fit {sf.shown}")
        return None
    if family == "number" and have == "number" and want.startswith("NUMBER(") and sf.data_type == "NUMBER":
        return _number_gap(col, sf, gap)
    if family == have:
        return None
    return gap(None, f"Snowflake cannot change {sf.shown} to {want} in place: {rebuild_steps(want)}")


def _number_gap(col: PgColumn, sf: SfColumn, gap) -> TypeGap | None:
    if col.precision is None and col.data_type == "numeric":
        return None  # unconstrained numeric: no fixed digits to compare
    # information_schema gives integer types a binary precision (bigint: 64): take their NUMBER's digits.
    precision, scale = ((col.precision, col.scale or 0) if col.data_type == "numeric"
                        else tuple(int(x) for x in snowflake_type(col)[7:-1].split(",")))
    sf_precision, sf_scale = sf.precision or MAX_PRECISION, sf.scale or 0
    if sf_scale >= scale and sf_precision - sf_scale >= precision - scale:
        return None
    if sf_scale < scale:
        return gap(None, f"Aurora keeps {scale} decimals and {sf.shown} keeps {sf_scale}; Snowflake cannot change "
                         f"a column's scale in place: {rebuild_steps(f'NUMBER({precision},{scale})')}")
    wider = precision - scale + sf_scale
    if wider > MAX_PRECISION:
        return gap(None, f"{wider} digits exceed Snowflake's {MAX_PRECISION}: store the column as VARCHAR "
                         f"({rebuild_steps('VARCHAR')})")
    return gap(f"NUMBER({wider},{sf_scale})", f"{precision - scale} integer digits do not fit {sf.shown}")


def rebuild_steps(target: str) -> str:
    return (f"pause the pipe and the merge task, then on each table ADD COLUMN <col>_NEW {target}, UPDATE it from "
            "the old column, DROP the old column and RENAME <col>_NEW to its name; or re-sync the table after "
            "recreating it")
