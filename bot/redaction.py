"""The one redaction step. It knows every configured secret (Slack tokens and signing secret, the
passwords in AURORA_DATABASE_URL and REDIS_URL, the Snowflake password and key passphrase) and takes
them out of any text before it is shown to people or logged: gateway errors, doctor output, Slack
messages, CLI output, and every log record (RedactingFilter, installed at start-up by `configure`).

Drivers echo what they were given: libpq quotes the malformed part of a connection string, redis-py
the URL it could not parse. So each secret is known in every spelling a driver may print: as
configured, percent-decoded and percent-encoded, and each of those as JSON (--json output) and
Python's repr (a logged list or dict) write it. URL userinfo (`scheme://user:password@`) is masked
even when the password is not one we know, e.g. a URL printed by a library from its own settings."""
from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Iterable
from urllib.parse import parse_qs, quote, unquote, urlsplit

MASK = "[redacted]"
# Shorter values would mask ordinary words in every message; a 1-3 character secret is no secret.
MIN_SECRET_LENGTH = 4
_USERINFO = re.compile(r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<user>[^\s:/@]*):(?P<password>[^\s@]+)@",
                       re.IGNORECASE)
# Drivers quote the part they could not parse, often a piece of the password (libpq stops at a /):
# a quoted piece of a known secret is masked too.
_QUOTED = re.compile(r'"([^"\n]{%d,})"|\'([^\'\n]{%d,})\'' % (MIN_SECRET_LENGTH, MIN_SECRET_LENGTH))
# Slack token shapes (xoxb-, xoxp-, xapp-...), masked even if not configured here.
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{8,}")


class Redactor:
    def __init__(self, secrets: Iterable[str] = ()):
        spellings = set()
        for secret in secrets:
            if secret:
                plain = {secret, unquote(secret), quote(secret, safe=""), quote(unquote(secret), safe="")}
                spellings |= plain | {json.dumps(s)[1:-1] for s in plain} | {repr(s)[1:-1] for s in plain}
        # Longest first, so a secret containing another is masked whole.
        self.secrets = sorted((s for s in spellings if len(s) >= MIN_SECRET_LENGTH), key=len, reverse=True)

    def __call__(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        if self.secrets:
            text = _QUOTED.sub(self._quoted_piece, text)
        text = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        return _SLACK_TOKEN.sub(MASK, text)


    def _quoted_piece(self, match: re.Match) -> str:
        piece = match.group(1) or match.group(2)
        return match.group(0).replace(piece, MASK) if any(piece in s for s in self.secrets) else match.group(0)


_active = Redactor()


def redact(text: object) -> str:
    """`text` (an exception, a message) with every configured secret masked."""
    return _active(str(text))


def secrets_of(settings) -> list[str]:
    """Every secret a Settings holds, including the userinfo of its connection URLs. Tolerates a
    malformed URL: it is exactly the kind a driver would echo."""
    found = []
    for name in ("slack_bot_token", "slack_signing_secret", "slack_app_token", "snowflake_password",
                 "snowflake_private_key_file_pwd", "redis_sentinel_password"):
        value = getattr(settings, name, None)
        if value is not None:
            found.append(value.get_secret_value())
    for name in ("redis_url", "aurora_database_url"):
        value = getattr(settings, name, None)
        if value is not None:
            found += url_secrets(value.get_secret_value())
    return found + libpq_secrets(os.environ)


def url_secrets(url: str) -> list[str]:
    """The password of scheme://user:password@host..., found the way a person reads it (up to the last
    @ before the host), so an unencoded #, / or % in it still counts; also the whole userinfo, and a
    `password=` query parameter. A user name without a password is no secret (masking it turned
    `postgres_endpoint_wal_engine.c` into `[redacted]_endpoint_wal_engine.c`)."""
    rest = url.split("://", 1)[1] if "://" in url else ""
    query = parse_qs(urlsplit(url).query) if "?" in url else {}
    found = [p for p in query.get("password", []) if p]
    if "@" not in rest.split("?", 1)[0]:
        return found
    userinfo = rest.split("?", 1)[0].rsplit("@", 1)[0]
    password = userinfo.split(":", 1)[1] if ":" in userinfo else ""
    return found + ([userinfo, password] if password else [])


def libpq_secrets(environ) -> list[str]:
    """Aurora passwords given outside the URL, as libpq reads them: PGPASSWORD, and the password field
    of each line of the password file (PGPASSFILE, default ~/.pgpass; `host:port:db:user:password`,
    with `\\:` and `\\\\` escaped). https://www.postgresql.org/docs/current/libpq-pgpass.html"""
    found = [environ["PGPASSWORD"]] if environ.get("PGPASSWORD") else []
    path = Path(environ.get("PGPASSFILE") or Path.home() / ".pgpass")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return found
    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            fields = re.split(r"(?<!\\):", line, maxsplit=4)
            if len(fields) == 5 and fields[4]:
                found.append(fields[4].replace("\\:", ":").replace("\\\\", "\\"))
    return found


# The attributes every LogRecord has; anything else on a record came from `extra=` or the correlation ids.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RedactingFilter(logging.Filter):
    """Masks secrets in every field of a record: its message, its traceback text and every extra field
    (a JSON log line writes each as its own key), for every handler it sits on."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        for key, value in list(vars(record).items()):
            if key not in _RECORD_ATTRS and value is not None and not isinstance(value, (int, float, bool)):
                setattr(record, key, redact(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_FILTER = RedactingFilter()


def configure(settings) -> Redactor:
    """At start-up, once the settings are loaded: this process's secrets become the ones masked, and
    every handler of the root logger masks them (handlers, not loggers: a record logged by a child
    logger passes its ancestors' handlers, never their filters)."""
    global _active
    _active = Redactor(secrets_of(settings))
    install_log_filter()
    return _active


def install_log_filter(logger: logging.Logger | None = None) -> None:
    for handler in (logger or logging.getLogger()).handlers:
        if _FILTER not in handler.filters:
            handler.addFilter(_FILTER)
