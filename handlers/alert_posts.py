"""Slack message events as the core reads them: everything about Slack's wire format that alert threads
need (subtypes, attachments, Block Kit, forwarded emails, mrkdwn) is here, and the core (bot.alerts)
receives a plain `Post`: who wrote it, and the parts it carries with their headlines, text and fields.

- New posts only: a message with no subtype (an app's chat.postMessage), `bot_message` (incoming
  webhooks, legacy bots), `file_share` (an email forwarded into the channel, an app's upload) and
  `thread_broadcast` (a reply also sent to the channel, passed on as in a thread, so the core can say
  no). Edits, deletions, joins, topic changes and hidden messages are never read.
- Parts: the message text; each attachment (pretext and title as its headline; text, author, footer;
  its fields; its blocks); the message's blocks (a header as headline; "*Title*\\nvalue" and
  "*Title:* value" texts, as PagerDuty and Elementary write them, as fields); each forwarded email
  (subject as headline, plain text).
- mrkdwn: user, group and channel mentions are dropped (a user called @resolved is not a recovery),
  links keep their label and address (either may name the table), and Slack's escapes are undone.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from bot.alerts import Author, Field, Part, Post

_NEW_POST_SUBTYPES = {None, "bot_message", "file_share", "thread_broadcast"}
_ATTACHMENT_TEXT = ("text", "author_name", "footer")
# A Block Kit field written as a title and a value: "*Status*\nTriggered", "*Status:* warn |".
_TITLED = re.compile(r"[ \t]*\*([^*\n]{1,60}?):?\*:?[ \t]*[\n \t]")
# Never [^>]*: "<@<@<@..." without a ">" would make that quadratic.
_MENTION = re.compile(r"<[@!][^<>]*>")  # <@U123|dana>, <!subteam^S1|@oncall>, <!here>
_CHANNEL = re.compile(r"<#[A-Z0-9]+(?:\|([^<>]*))?>")
_LINK = re.compile(r"<([^<>|]+)\|([^<>]*)>")
_BARE_LINK = re.compile(r"<((?:https?|mailto):[^<>]*)>")


def post_of(event: Mapping[str, Any]) -> Post | None:
    """A new post with its parts, or None for anything that is not one (edits, deletions, joins...)."""
    subtype = event.get("subtype")
    if event.get("type") != "message" or subtype not in _NEW_POST_SUBTYPES or event.get("hidden"):
        return None
    channel, ts = event.get("channel"), event.get("ts")
    if not isinstance(channel, str) or not isinstance(ts, str):
        return None
    in_thread = event.get("thread_ts") not in (None, ts)  # a thread_broadcast has one too
    emails = _emails(event)
    integration = bool(event.get("bot_id")) or subtype == "bot_message" or bool(emails)
    parts = tuple(p for p in _parts(event, emails) if p.headline or p.text or p.fields)
    if not parts:
        return None
    return Post(channel, ts, Author.INTEGRATION if integration else Author.PERSON, parts, in_thread)


def _parts(event: Mapping[str, Any], emails: list[dict]) -> Iterable[Part]:
    yield Part(text=_plain(event.get("text")))
    for attachment in _dicts(event.get("attachments")):
        yield _attachment(attachment)
    if event.get("blocks"):
        yield _blocks(event.get("blocks"))
    for email in emails:
        yield Part(headline=_plain(email.get("subject")),
                   text=_plain(email.get("plain_text") or email.get("preview_plain_text")))


def _attachment(attachment: Mapping[str, Any]) -> Part:
    headline = "\n".join(_plain(attachment.get(k)) for k in ("pretext", "title") if attachment.get(k))
    lines = [_plain(attachment.get(k)) for k in _ATTACHMENT_TEXT if attachment.get(k)]
    fields = [Field(_plain(f.get("title")), _plain(f.get("value"))) for f in _dicts(attachment.get("fields"))]
    if attachment.get("blocks"):
        inner = _blocks(attachment.get("blocks"))
        headline = headline or inner.headline
        lines.append(inner.text)
        fields.extend(inner.fields)
    return Part(headline, "\n".join(filter(None, lines)), tuple(fields))


def _blocks(blocks: Any) -> Part:
    """Every text of a Block Kit tree (sections, their fields, headers, context, rich text), with the
    first header as the headline and title/value texts as fields."""
    headline: list[str] = []
    lines: list[str] = []
    fields: list[Field] = []

    def text_of(node: Mapping[str, Any]) -> None:
        text = _plain(node.get("text"))
        titled = _TITLED.match(text)
        value = text[titled.end():].strip(" \t\n|") if titled else ""
        if value:
            fields.append(Field(titled.group(1).strip(), value))
        elif text:
            lines.append(text)

    def walk(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("type") == "actions":
                return  # buttons ("Resolve", "Acknowledge") are what one may do, not what happened
            if node.get("type") == "header" and isinstance(node.get("text"), dict) and not headline:
                headline.append(_plain(node["text"].get("text")))
                return
            if isinstance(node.get("text"), str):
                text_of(node)
            for key in ("text", "fields", "elements"):
                if not isinstance(node.get(key), str):
                    walk(node.get(key))

    walk(blocks)
    return Part("\n".join(headline), "\n".join(lines), tuple(fields))


def _emails(event: Mapping[str, Any]) -> list[dict]:
    return [f for f in _dicts(event.get("files")) if f.get("filetype") == "email" or f.get("mode") == "email"]


def _dicts(value: Any) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _plain(value: Any) -> str:
    """mrkdwn to plain text: mentions dropped, links as "label address", Slack's escapes undone."""
    if not isinstance(value, str):
        return ""
    text = _MENTION.sub("", value)
    text = _CHANNEL.sub(lambda m: f"#{m.group(1) or ''}", text)
    text = _LINK.sub(lambda m: f"{m.group(2)} {m.group(1)}", text)
    text = _BARE_LINK.sub(lambda m: m.group(1), text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
