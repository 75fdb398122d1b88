"""Alert threads: an alert about the sync, posted in one of the catalog's alert channels, gets the
runbook's diagnosis and fix buttons in its thread, exactly as /sync-status shows them. alert_posts turns
the Slack event into a plain post; the core reads it, marks its first delivery and diagnoses it (bot.alert_threads); this
only posts."""
from __future__ import annotations

import logging
from typing import Callable

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block

from bot.alert_threads import AlertThreads, Annotation, RecoveryNote, Thread
from bot.alerts import Kind
from bot.core import SyncBot

from . import alert_posts, blocks, pictures
from .poster import Poster

log = logging.getLogger(__name__)
MAX_FULL = 5  # full diagnoses under one alert; the rest of a big DMS task's tables get one summary


def register(app: App, bot: SyncBot, hold: Callable[[], None] = lambda: None) -> None:
    """`hold`: as for /sync-status, an alert's diagnoses wait for a burst's acks before they are posted."""
    threads = AlertThreads(bot)

    # Every message subtype, so Bolt acknowledges edits, deletions and joins too (an event no listener
    # matches is answered 404, and Slack retries it); the core decides what is an alert. The bot's own
    # posts never get here: Bolt's default IgnoringSelfEvents middleware drops them.
    @app.event("message")
    def on_message(event, client):
        post = alert_posts.post_of(event)
        alerts = threads.read(post) if post is not None else ()
        if not alerts or not threads.first_delivery(post):
            return
        for alert in alerts:
            log.info("%s in %s at %s for %s", alert.kind, alert.channel, alert.ts,
                     ", ".join(s.name for s in alert.tables))
            if alert.kind is Kind.RECOVERY:
                for note in threads.recover(alert):
                    hold()
                    post_recovery(client, note)
            else:
                annotation = threads.annotate(alert)
                hold()
                post_annotation(client, bot, annotation)


def post_annotation(client: WebClient, bot: SyncBot, annotation: Annotation) -> None:
    where = annotation.thread
    shown, rest = annotation.diagnoses[:MAX_FULL], annotation.diagnoses[MAX_FULL:]
    for diag in shown:
        if not reply(client, where, blocks.fallback_text(diag),
                     blocks.diagnosis_blocks(diag, bot.offer(diag, where.channel))):
            return  # the bot may not post there: one warning in the log, not one per reply
        spec = bot.find(diag.table)
        if spec is not None:
            pictures.post_latency_picture(client, bot, spec, where.channel, where.ts)
    if rest:
        reply(client, where, f"{len(rest)} more tables of this alert", blocks.fleet_blocks(list(rest)))
    by_first: dict[Thread, list[str]] = {}
    for table, first in annotation.earlier:
        by_first.setdefault(first, []).append(table)
    window = bot.catalog.alerts.suppression_minutes
    for first, tables in by_first.items():
        named = ", ".join(f"*{blocks.escape(t)}*" for t in tables)
        reply(client, where, f":repeat: Another alert for {named} within {window} min: the diagnosis and fixes are "
                             f"in the thread of {link(client, first, 'the first alert')}.")


def post_recovery(client: WebClient, note: RecoveryNote) -> None:
    reply(client, note.thread, blocks.verdict_lines(note.diagnoses, "Recovery reported. Current state: "))


def reply(client: WebClient, thread: Thread, text: str, message_blocks: list[Block] | None = None) -> bool:
    """In the alert's thread; False where it was not posted. An event has no response_url: where the bot
    may not post (removed from the alert channel), the reply is not posted and the log says to invite it."""
    return Poster(client).post(thread.channel, text, message_blocks, thread_ts=thread.ts) is not None


def link(client: WebClient, message: Thread, label: str) -> str:
    """chat.getPermalink, not a URL built by hand: only Slack knows the workspace's (or the Enterprise
    Grid org's) domain. Without it the reply still says where to look."""
    try:
        return f"<{client.chat_getPermalink(channel=message.channel, message_ts=message.ts)['permalink']}|{label}>"
    except SlackApiError as exc:
        log.info("no permalink for %s/%s: %s", message.channel, message.ts, exc.response.get("error"))
        return f"{label} in <#{message.channel}>"
