import pytest

from bot.diagnostics.typemap import snowflake_type
from bot.gateways.aurora import PgColumn


@pytest.mark.parametrize("column, expected", [
    (PgColumn("a", "integer"), "NUMBER(10,0)"),
    (PgColumn("a", "bigint"), "NUMBER(19,0)"),
    (PgColumn("a", "smallint"), "NUMBER(5,0)"),
    (PgColumn("a", "numeric", precision=12, scale=2), "NUMBER(12,2)"),
    (PgColumn("a", "numeric"), "NUMBER(38,10)"),
    (PgColumn("a", "character varying", char_length=64), "VARCHAR(64)"),
    (PgColumn("a", "character varying"), "VARCHAR"),
    (PgColumn("a", "character", char_length=2), "CHAR(2)"),
    (PgColumn("a", "text"), "VARCHAR"),
    (PgColumn("a", "boolean"), "BOOLEAN"),
    (PgColumn("a", "double precision"), "FLOAT"),
    (PgColumn("a", "timestamp without time zone"), "TIMESTAMP_NTZ"),
    (PgColumn("a", "timestamp with time zone"), "TIMESTAMP_TZ"),
    (PgColumn("a", "date"), "DATE"),
    (PgColumn("a", "jsonb"), "VARIANT"),
    (PgColumn("a", "uuid"), "VARCHAR(36)"),
    (PgColumn("a", "bytea"), "BINARY"),
    (PgColumn("a", "USER-DEFINED"), "VARCHAR"),
])
def test_postgres_to_snowflake(column, expected):
    assert snowflake_type(column) == expected
