"""Which posts in an alert channel are alerts about the sync, which are recoveries, and for which catalog
tables: the one place these rules live. Pure and free of chat wire formats: the Slack glue
(handlers/alert_posts.py) turns a message into a `Post` (who wrote it; the parts it carries, each with
its headline, text and title/value fields) and this decides, table by table.

- Only new top-level posts by integrations count (a bot, an app, a webhook, an email forwarded in):
  people's chatter and follow-ups in a thread never do.
- A post is split into the alerts it carries: each part (an attachment, the blocks, an email), and
  within a part the grouped sections of Grafana and Alertmanager ("**Firing**" / "**Resolved**").
- Each alert's state is read strongest evidence first, and a weaker level is consulted only when the
  stronger ones say nothing: (3) a structured state, a field titled State / Current State / Status...
  or its inline "State: `OK`" form, CloudWatch's own sentences and JSON, a DMS event id; (2) the
  state word a headline starts with ("[FIRING:2]", "Recovered:", "[No Data on ...]"); (1) words, the
  headline's before the body's, with label lines ("- alertname = x") and links left out. So a field
  titled "Alarm Name" cannot make an OK alarm a new alert, nor "resolved" in one section recover the
  table firing in another.
- Tables are found by their catalog identifiers, as whole words; a DMS task (identifier, or the
  resource id CloudWatch uses) stands for its tables, and a DMS event about a replication instance
  for the tables of every task on it. A table that fires anywhere in a post is an alert.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Callable, Iterable, Mapping

from .catalog import Catalog, TableSpec

MAX_TEXT = 40_000  # an alert's useful part is short; this bounds the regex work on hostile input


class Kind(StrEnum):
    ALERT = "alert"
    RECOVERY = "recovery"


class Author(StrEnum):
    INTEGRATION = "integration"  # a bot, an app, an incoming webhook, or an email forwarded into the channel
    PERSON = "person"


@dataclass(frozen=True)
class Field:
    title: str
    value: str


@dataclass(frozen=True)
class Part:
    """One thing a tool posted that may carry an alert of its own: the message text, an attachment, the
    blocks, a forwarded email. `headline` is its title (attachment title, header, email subject)."""

    headline: str = ""
    text: str = ""
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Post:
    channel: str
    ts: str
    author: Author
    parts: tuple[Part, ...]
    in_thread: bool = False  # a reply in a thread, even one also sent to the channel


@dataclass(frozen=True)
class Alert:
    kind: Kind
    channel: str
    ts: str
    tables: tuple[TableSpec, ...]


def read(post: Post, catalog: Catalog, task_aliases: Callable[[], Mapping[str, str]] = dict) -> tuple[Alert, ...]:
    """The alerts (at most one of each kind, the alert first) this post carries for catalog tables.
    `task_aliases` (other names of a DMS task -> its catalog identifier) is only called for posts that
    report a state, so chatter costs no DMS call."""
    if post.author is not Author.INTEGRATION or post.in_thread:
        return ()
    units = [(unit, classify_unit(unit)) for unit in _units(post.parts)]
    if not any(kind for unit, (kind, level) in units):
        return ()
    # A part that says no state of its own (a details attachment) shares the post's strongest one.
    strongest = max((level, kind is Kind.ALERT) for unit, (kind, level) in units if kind)
    fallback = Kind.ALERT if strongest[1] else Kind.RECOVERY
    aliases = task_aliases()
    named = [_tables_of(unit, catalog, aliases) for unit, _ in units]
    # A grouped message's headline ("[FIRING:1, RESOLVED:1] ...") and fallback text speak for the whole
    # group; when its sections name tables, each table is what its own section says.
    sectioned = any(unit.section and tables for (unit, _), tables in zip(units, named))
    by_table: dict[str, Kind] = {}
    for (unit, (kind, level)), tables in zip(units, named):
        if kind is None and level == DEFINITE:
            continue  # a DMS event that is neither (a task created, modified...) says nothing
        if sectioned and unit.section is None:
            continue
        for spec in tables:
            if by_table.get(spec.name) is not Kind.ALERT:  # firing anywhere in the post: an alert
                by_table[spec.name] = kind or fallback
    alerts = []
    for kind in (Kind.ALERT, Kind.RECOVERY):
        tables = tuple(spec for spec in catalog.tables if by_table.get(spec.name) is kind)
        if tables:
            alerts.append(Alert(kind, post.channel, post.ts, tables))
    return tuple(alerts)


# -- one post, several alerts --------------------------------------------------------------------------

@dataclass(frozen=True)
class Unit:
    """One alert inside a post: a part, or one grouped section of a part."""

    headline: str
    text: str
    fields: tuple[Field, ...] = ()
    section: Kind | None = None  # the state of the grouped section it is, if it is one


# A line that is only a group's heading: "**Firing**", "*Alerts Resolved:*", "Alerts Firing:".
_SECTION = re.compile(r"(?im)^[^\w\n]*(?:alerts?\s+)?(firing|resolved)[^\w\n]*$")


def _units(parts: Iterable[Part]) -> list[Unit]:
    units: list[Unit] = []
    budget = MAX_TEXT  # characters for the whole post: headlines, texts and fields alike

    def take(text: str) -> str:
        nonlocal budget
        taken = text[:budget]
        budget -= len(taken)
        return taken

    for part in parts:
        headline, text = take(part.headline), take(part.text)
        fields = []
        for f in part.fields:
            if not budget:
                break
            fields.append(Field(take(f.title), take(f.value)))
        units.extend(_split(Unit(headline, text, tuple(fields))))
        if not budget:
            break
    return units


def _split(unit: Unit) -> list[Unit]:
    """Grafana's and Alertmanager's grouped messages: each "Firing" / "Resolved" section is one alert.
    What precedes the first section (the headline, a summary) stays a unit of its own."""
    heads = list(_SECTION.finditer(unit.text))
    if not heads:
        return [unit]
    units = [Unit(unit.headline, unit.text[:heads[0].start()], unit.fields)]
    for head, following in zip(heads, heads[1:] + [None]):
        body = unit.text[head.end():following.start() if following else len(unit.text)]
        state = Kind.ALERT if head.group(1).lower() == "firing" else Kind.RECOVERY
        units.append(Unit("", body, section=state))
    return units


# -- alert, recovery or neither ---------------------------------------------------------------------------

DEFINITE, HEADLINE, WORDS, NOTHING = 3, 2, 1, 0

# State values, as tools spell them (compared lower case, without back-ticks, bold or emoji).
_ALERT_STATES = {"alarm", "alert", "alerting", "firing", "triggered", "re-triggered", "retriggered", "critical",
                 "error", "errored", "fail", "failed", "failure", "warn", "warning", "no data", "nodata",
                 "insufficient data", "stale", "breached", "down"}
_RECOVERY_STATES = {"ok", "resolved", "recovered", "recovery", "pass", "passed", "success", "succeeded",
                    "healthy", "normal", "warn recovery", "alert recovery", "no data recovery"}
# Field titles that carry the alert's state now (never "Old State" / "Previous State").
_STATE_TITLES = {"state", "current state", "new state", "alarm state", "alert state", "status", "alert status",
                 "monitor status", "incident status", "test status", "newstatevalue", "new state value"}

_STATE = r"(ALARM|OK|INSUFFICIENT_DATA)"
# CloudWatch's own wording of the new state, most specific first. Case-sensitive: states are upper case.
_CLOUDWATCH = [
    re.compile(r'"NewStateValue"\s*:\s*"' + _STATE + '"'),                 # SNS notification JSON
    re.compile(r"State Change:\s*[A-Z_]+\s*->\s*" + _STATE + r"\b"),       # SNS email body
    re.compile(r"has entered the " + _STATE + r" state"),                  # SNS email body
    re.compile(r"changed state to " + _STATE + r"\b"),
    re.compile(r"\bstate is now " + _STATE + r"\b"),                       # the Lambda blueprint's text
    re.compile(r"(?m)^" + _STATE + r': "'),                                # SNS subject: ALARM: "name" in ...
]
# "Title: value" on a line of its own, as tools write fields inline: "*Current State:* `OK`", "Status: warn |".
# Within one line ([ \t], never \s): a pattern that can cross lines goes quadratic on a post of blank lines.
_INLINE_FIELD = re.compile(r"(?m)^[ \t>•\-*_]*([A-Za-z][A-Za-z ]{1,30}?)[*_ \t]*:[*_ \t]*([^\n|]{1,40}?)[ \t|]*$")

# DMS event ids (SNS "Event ID: ...#DMS-EVENT-0079", EventBridge "eventName"): the user guide's table.
_DMS_EVENT = re.compile(r"DMS-EVENT-(\d{4})")
_DMS_ALERTS = {
    "0078",  # replication task failed
    "0079",  # replication task stopped
    "0082",  # a call to delete the task failed to clean up task data
    "0091",  # reading paused, swap files limit reached
    "0092",  # reading paused, disk usage limit reached
    "0007",  # replication instance: free storage low
    "0031",  # replication instance: storage failure
    "0036",  # replication instance: failed, incompatible network
    "0037",  # replication instance: cannot access the KMS key of its data volume
}
_DMS_RECOVERIES = {"0069", "0093"}  # replication task started; reading resumed

# A headline that starts with its state: "[FIRING:2]", "[RESOLVED]", "Triggered:", "[No data on {...}]".
# ("OK" / "ALARM" are CloudWatch's, read above; a deploy bot's "Ok, shipped orders-api" is no recovery.)
_LEADING = re.compile(r"(?i)^[^\w\[]*\[?\s*(firing|resolved|re-triggered|triggered|recovered|warn(?:ing)?"
                      r"|no data|alert|critical|error|failed|failure)\b")
_EMOJI = re.compile(r":[a-z0-9_+\-]+:")
# Whole words; "_" separates them (USER_TASK_FAILED) but "-" joins a name (orders-freshness-alarm).
_RECOVERY_WORDS = re.compile(r"(?i)(?<![a-z0-9-])(resolved|recovered|recovery|back to normal)(?![a-z0-9-])")
_ALERT_WORDS = re.compile(r"(?i)(?<![a-z0-9-])(alarms?|alerts?|alerting|triggered|firing|critical|failed|failure|"
                          r"errors?|stale|breached?|incidents?|anomaly|anomalies)(?![a-z0-9-])")
_LABEL_LINE = re.compile(r"(?m)^[ \t]*-[ \t]*\w+[ \t]*=.*$")  # " - alertname = DmsTaskFailed": a name, not a state
_URL = re.compile(r"https?://\S+")


def classify_unit(unit: Unit) -> tuple[Kind | None, int]:
    """The unit's state and how strong the evidence is (DEFINITE, HEADLINE, WORDS or NOTHING)."""
    if unit.section is not None:
        return unit.section, DEFINITE
    definite = _structured(unit)
    if definite is not _NONE:
        return definite, DEFINITE
    leading = _LEADING.match(_EMOJI.sub("", unit.headline).strip() or _EMOJI.sub("", _first_line(unit.text)))
    if leading:
        return _state(leading.group(1)), HEADLINE
    for text in (unit.headline, _prose("\n".join([unit.text, *(f.value for f in unit.fields)]))):
        if _RECOVERY_WORDS.search(text):
            return Kind.RECOVERY, WORDS
        if _ALERT_WORDS.search(text):
            return Kind.ALERT, WORDS
    return None, NOTHING


def classify(text: str) -> Kind | None:
    """The state a bare text reports (one unit: its first line as headline)."""
    return classify_unit(Unit("", text))[0]


_NONE = object()  # "no structured state here", as opposed to a DMS event that is explicitly neither


def _structured(unit: Unit) -> Kind | None | object:
    for f in unit.fields:
        if _norm(f.title) in _STATE_TITLES and _state(f.value):
            return _state(f.value)
    text = "\n".join(filter(None, (unit.headline, unit.text, *(f"{f.title}: {f.value}" for f in unit.fields))))
    for pattern in _CLOUDWATCH:
        found = pattern.search(text)
        if found:
            # INSUFFICIENT_DATA counts: a DMS task that stopped emits no latency metrics at all.
            return Kind.RECOVERY if found.group(1) == "OK" else Kind.ALERT
    event = _DMS_EVENT.search(text)
    if event:
        number = event.group(1)
        return Kind.ALERT if number in _DMS_ALERTS else Kind.RECOVERY if number in _DMS_RECOVERIES else None
    for found in _INLINE_FIELD.finditer(text):
        if _norm(found.group(1)) in _STATE_TITLES and _state(found.group(2)):
            return _state(found.group(2))
    return _NONE


def _state(value: str) -> Kind | None:
    word = _norm(value)
    if word in _ALERT_STATES:
        return Kind.ALERT
    if word in _RECOVERY_STATES:
        return Kind.RECOVERY
    return None


def _norm(text: str) -> str:
    """`OK`, *OK*, :white_check_mark: OK -> "ok"; "Current  State" -> "current state"."""
    text = _EMOJI.sub(" ", text.lower())
    return " ".join(re.sub(r"[`*_~\"']", " ", text).split())


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def _prose(text: str) -> str:
    return _URL.sub(" ", _LABEL_LINE.sub(" ", text))


# -- which tables ----------------------------------------------------------------------------------------

def _tables_of(unit: Unit, catalog: Catalog, aliases: Mapping[str, str]) -> tuple[TableSpec, ...]:
    text = "\n".join(filter(None, (unit.headline, unit.text, *(f.value for f in unit.fields))))
    named = tables_named(text, catalog, aliases)
    instance = _dms_instance(unit)
    if instance is None:
        return named
    # The tables of the tasks on that instance: by the task's own ReplicationInstanceArn (the aliases
    # carry it), or by the catalog's dms_instance, compared case-insensitively.
    on_instance = {task for alias, task in aliases.items() if alias.startswith(f"{INSTANCE_ALIAS}{instance}/")}
    return named + tuple(s for s in catalog.tables if s not in named and (
        s.dms_task in on_instance or (s.dms_instance or "").lower() == instance))


# An alias of the form instance:<identifier>/<task>: the task runs on that replication instance.
INSTANCE_ALIAS = "instance:"


_EVENT_SOURCE = re.compile(r'(?i)"?Event Source"?\s*[:=]\s*[`"]*replication-instance')
_SOURCE_ID = re.compile(r'(?i)"?Source ?Id"?\s*[:=]\s*[`"]*([A-Za-z0-9-]+)')


def _dms_instance(unit: Unit) -> str | None:
    """The replication instance a DMS event is about (SNS "Event Source: replication-instance", its id
    in "SourceId"), as a field, an inline line or the SNS JSON; None for anything else."""
    text = "\n".join(filter(None, (unit.text, *(f"{f.title}: {f.value}" for f in unit.fields))))
    if not _EVENT_SOURCE.search(text):
        return None
    found = _SOURCE_ID.search(text)
    return found.group(1).lower() if found else None


def tables_named(text: str, catalog: Catalog, task_aliases: Mapping[str, str] | None = None) -> tuple[TableSpec, ...]:
    """Catalog tables the text names, in catalog order. A table is named by its name, Aurora source,
    staging or final table, pipe or merge task; a DMS task (identifier or alias) names all its tables."""
    names: dict[str, set[str]] = {}
    for spec in catalog.tables:
        for key in (spec.name, spec.source, spec.staging_table, spec.final_table, spec.pipe, spec.merge_task):
            names.setdefault(key.lower(), set()).add(spec.name)
    tasks = catalog.tasks()
    aliases = {alias: task for alias, task in (task_aliases or {}).items()
               if task in tasks and not alias.startswith(INSTANCE_ALIAS)}
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
