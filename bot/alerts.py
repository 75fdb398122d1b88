"""Which Slack messages are alerts about the sync, and which catalog tables they name: the one place
these rules live. Pure: an Events API message event (a plain dict) in, a plain answer out, so every
rule is tested on recorded payloads (tests/payloads/).

- Only new top-level posts by integrations count (a bot or app, or an email forwarded into Slack):
  people's chatter, thread replies, edits and deletions never do.
- The text is gathered from wherever integrations put it: the message text, attachments (title,
  text, fields as "title: value"), Block Kit blocks (any depth) and forwarded email files.
- The state the message reports decides its kind: a CloudWatch state first (SNS JSON, SNS email,
  AWS Chatbot fields), then recovery words ("[RESOLVED]", "resolved", "recovered"), then alert words.
- Tables are found by their catalog identifiers, case-insensitively, as whole words; the DMS task
  (by identifier, or by the resource id CloudWatch uses) stands for every table of that task.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from enum import StrEnum
from typing import Any, Callable, Mapping

from .catalog import Catalog, TableSpec

MAX_TEXT = 40_000  # an alert's useful part is short; this bounds the regex work on hostile input
# New top-level posts; every other subtype is an edit, a deletion, a join, a topic change...
_NEW_POST_SUBTYPES = {None, "bot_message", "file_share"}
_TEXT_KEYS = ("pretext", "author_name", "title", "text", "footer")
_EMAIL_KEYS = ("subject", "plain_text", "preview_plain_text")


class Kind(StrEnum):
    ALERT = "alert"
    RECOVERY = "recovery"


@dataclass(frozen=True)
class Post:
    channel: str
    ts: str
    text: str


@dataclass(frozen=True)
class Alert:
    kind: Kind
    channel: str
    ts: str
    tables: tuple[TableSpec, ...]


def read(event: Mapping[str, Any], catalog: Catalog,
         task_aliases: Callable[[], Mapping[str, str]] = dict) -> Alert | None:
    """The alert (or recovery) this message event is, or None. `task_aliases` (other names of a DMS
    task -> its catalog identifier) is only called for messages that are alerts."""
    post = post_of(event)
    if post is None:
        return None
    kind = classify(post.text)
    if kind is None:
        return None
    tables = tables_named(post.text, catalog, task_aliases())
    return Alert(kind, post.channel, post.ts, tables) if tables else None


# -- which messages ----------------------------------------------------------------------------------

def post_of(event: Mapping[str, Any]) -> Post | None:
    """A new top-level post by an integration, with its text gathered; None for anything else."""
    if event.get("type") != "message" or event.get("subtype") not in _NEW_POST_SUBTYPES:
        return None
    channel, ts = event.get("channel"), event.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str):
        return None
    if event.get("thread_ts") not in (None, ts):  # a reply in a thread
        return None
    if not (event.get("bot_id") or event.get("subtype") == "bot_message" or _emails(event)):
        return None  # typed by a person
    text = text_of(event)
    return Post(channel, ts, text) if text.strip() else None


def text_of(event: Mapping[str, Any]) -> str:
    parts: list[str] = []
    _add(parts, event.get("text"))
    for attachment in _dicts(event.get("attachments")):
        for key in _TEXT_KEYS:
            _add(parts, attachment.get(key))
        for f in _dicts(attachment.get("fields")):
            _add(parts, f"{f.get('title', '')}: {f.get('value', '')}")
        _walk_blocks(attachment.get("blocks"), parts)
    _walk_blocks(event.get("blocks"), parts)
    for email in _emails(event):
        for key in _EMAIL_KEYS:
            _add(parts, email.get(key))
    return _unescape("\n".join(parts))[:MAX_TEXT]


def _emails(event: Mapping[str, Any]) -> list[dict]:
    return [f for f in _dicts(event.get("files")) if f.get("filetype") == "email" or f.get("mode") == "email"]


def _walk_blocks(node: Any, parts: list[str]) -> None:
    """Every text of a Block Kit tree: section text and fields, headers, context and rich text."""
    if isinstance(node, list):
        for item in node:
            _walk_blocks(item, parts)
    elif isinstance(node, dict):
        text = node.get("text")
        if isinstance(text, str):
            parts.append(text)
        for key in ("text", "fields", "elements"):
            if not isinstance(node.get(key), str):
                _walk_blocks(node.get(key), parts)


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _add(parts: list[str], value: Any) -> None:
    if isinstance(value, str) and value:
        parts.append(value)


def _unescape(text: str) -> str:
    # Slack's mrkdwn escapes; links <url|label> keep both, since either may carry the name.
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


# -- alert, recovery or neither --------------------------------------------------------------------------

_STATE = r"(ALARM|OK|INSUFFICIENT_DATA)"
# The new state a CloudWatch alarm reports, most specific first. Case-sensitive: states are upper case.
_CLOUDWATCH_STATE = [
    re.compile(r'"NewStateValue"\s*:\s*"' + _STATE + '"'),                # SNS notification JSON
    re.compile(r"State Change:\s*[A-Z_]+\s*->\s*" + _STATE + r"\b"),      # SNS email body
    re.compile(r"has entered the " + _STATE + r" state"),                 # SNS email body
    re.compile(r"changed state to " + _STATE + r"\b"),
    re.compile(r"(?m)^\s*(?:Alarm )?State:\s*\**" + _STATE + r"\b"),      # AWS Chatbot field "State: ALARM"
    re.compile(r"(?m)^" + _STATE + r': "'),                               # SNS subject: ALARM: "name" in ...
]
_RECOVERED = re.compile(r"(?i)\[RESOLVED\]|(?<![a-z])(resolved|recovered|recovery|back to normal)(?![a-z])")
_ALERTING = re.compile(r"(?i)\[FIRING|(?<![a-z])(alarms?|alerts?|alerting|triggered|firing|critical|failed|failure|"
                       r"errors?|stale|breached?)(?![a-z])")


def classify(text: str) -> Kind | None:
    for pattern in _CLOUDWATCH_STATE:
        found = pattern.search(text)
        if found:
            # INSUFFICIENT_DATA counts: a DMS task that stopped emits no latency metrics at all.
            return Kind.RECOVERY if found.group(1) == "OK" else Kind.ALERT
    if _RECOVERED.search(text):
        return Kind.RECOVERY
    if _ALERTING.search(text):
        return Kind.ALERT
    return None


# -- which tables ----------------------------------------------------------------------------------------

def tables_named(text: str, catalog: Catalog, task_aliases: Mapping[str, str] | None = None) -> tuple[TableSpec, ...]:
    """Catalog tables the text names, in catalog order. A table is named by its name, Aurora source,
    staging or final table, pipe or merge task; a DMS task (identifier or alias) names all its tables."""
    names: dict[str, set[str]] = {}
    for spec in catalog.tables:
        for key in (spec.name, spec.source, spec.staging_table, spec.final_table, spec.pipe, spec.merge_task):
            names.setdefault(key.lower(), set()).add(spec.name)
    tasks = catalog.tasks()
    aliases = {alias: task for alias, task in (task_aliases or {}).items() if task in tasks}
    for task, specs in tasks.items():
        for key in [task, *(alias for alias, t in aliases.items() if t == task)]:
            names.setdefault(key.lower(), set()).update(spec.name for spec in specs)
    named: set[str] = set()
    for found in _words(tuple(names)).finditer(text):
        named |= names[found.group(1).lower()]
    return tuple(spec for spec in catalog.tables if spec.name in named)


@lru_cache(maxsize=8)
def _words(keys: tuple[str, ...]) -> re.Pattern[str]:
    """Whole words only: a name ends at anything but [A-Za-z0-9_$], so `orders` is in "PUBLIC.ORDERS" and
    "orders-freshness" but not in "orders_archive". Longest first, so of two DMS tasks
    "aurora-cdc" and "aurora-cdc-2", "aurora-cdc-2-latency" names only the second."""
    alternatives = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_$])({alternatives})(?![A-Za-z0-9_$])", re.IGNORECASE)
