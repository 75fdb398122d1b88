"""The redaction step's reach: every field of a JSON log record, passwords given to libpq outside the
URL (PGPASSWORD, the password file), and no longer the user name of a password-less URL."""
from __future__ import annotations

import io
import json
import logging

import pytest
from pydantic import SecretStr
from pythonjsonlogger.json import JsonFormatter

from bot import logs, redaction
from bot.settings import Settings


@pytest.fixture
def configured(monkeypatch, tmp_path):
    """configure() as start-up runs it, for the settings given; the default redactor again afterwards."""
    monkeypatch.setattr(redaction, "_active", redaction.Redactor())
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "none"))

    def configure(**fields):
        return redaction.configure(Settings.model_construct(**{k: SecretStr(v) for k, v in fields.items()}))

    yield configure
    for handler in logging.getLogger().handlers:
        handler.removeFilter(redaction._FILTER)


def test_the_user_of_a_password_less_url_is_not_masked(configured):
    redact = configured(aurora_database_url="postgresql://postgres@db.internal/app",
                        redis_url="redis://syncbot@cache.internal:6379/0")
    line = "postgres_endpoint_wal_engine.c:1234 [1020460] slot lost; run `syncbot doctor`"
    assert redact(line) == line
    assert redact("postgresql://postgres@db.internal/app") == "postgresql://postgres@db.internal/app"


def test_passwords_given_outside_the_url_are_masked(configured, monkeypatch, tmp_path):
    passfile = tmp_path / "pgpass"
    passfile.write_text("# host:port:database:user:password\n"
                        "db.internal:5432:app:syncbot:file\\:pass\\\\word\n*:*:*:other:s3cond-pw\n")
    monkeypatch.setenv("PGPASSFILE", str(passfile))
    monkeypatch.setenv("PGPASSWORD", "env-pw-0042")
    redact = configured(aurora_database_url="postgresql://syncbot@db.internal/app")
    said = redact("auth failed with env-pw-0042, file:pass\\word and s3cond-pw for syncbot")
    assert said == "auth failed with [redacted], [redacted] and [redacted] for syncbot"


def test_every_field_of_a_json_record_is_redacted(configured):
    configured(snowflake_password="sf-Pa55-word")
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s",
                                       rename_fields={"asctime": "time", "levelname": "level", "name": "logger"}))
    handler.addFilter(logs.CorrelationFilter())
    handler.addFilter(redaction.RedactingFilter())
    log = logging.getLogger("syncbot.test.fields")
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        with logs.correlated(request_id="req-1", table="orders"):
            log.info("connect %s", "sf-Pa55-word", extra={"detail": "password=sf-Pa55-word",
                                                          "url": "redis://u:other-secret@h:6379/0"})
    finally:
        log.removeHandler(handler)
    record = json.loads(out.getvalue())
    assert "sf-Pa55-word" not in out.getvalue() and "other-secret" not in out.getvalue()
    assert record["message"] == "connect [redacted]" and record["detail"] == "password=[redacted]"
    assert record["url"] == "redis://u:[redacted]@h:6379/0"
    assert (record["request_id"], record["table"], record["level"], record["logger"]) == (
        "req-1", "orders", "INFO", "syncbot.test.fields")
    assert "time" in record
