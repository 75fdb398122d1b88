"""Alert threads: an alert about the sync, posted in one of the catalog's alert channels, gets the
runbook's diagnosis and fix buttons in its thread, exactly as /sync-status shows them. alert_posts turns
the Slack event into a plain post; the core reads it, marks its first delivery and diagnoses it (bot.alert_threads); this
only posts."""
from __future__ import annotations

import json
import logging
from typing import Callable

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from bot.alert_threads import AlertThreads, Annotation, RecoveryNote, Thread
from bot.alerts import Kind
from bot.core import SyncBot
from bot.incidents import Incident
from bot.models import Diagnosis

from . import alert_posts, blocks, pictures
from .blocks import to_dicts
from .incident_card import Cards, opening_state, verified_state, with_state
from .poster import Poster
from .snooze import snoozed_line, snooze_menu

log = logging.getLogger(__name__)
MAX_FULL = 5  # full diagnoses under one alert; the rest of a big DMS task's tables get one summary


def register(app: App, bot: SyncBot, hold: Callable[[], None] = lambda: None) -> None:
    """`hold`: as for /sync-status, an alert's diagnoses wait for a burst's acks before they are posted."""
    threads = AlertThreads(bot)
    cards = Cards(Poster(app.client), threads.incidents)

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
                    post_recovery(client, note, cards)
            else:
                annotation = threads.annotate(alert)
                hold()
                post_annotation(client, bot, annotation, cards)


def post_annotation(client: WebClient, bot: SyncBot, annotation: Annotation, cards: Cards | None = None) -> None:
    where = annotation.thread
    shown, rest = annotation.diagnoses[:MAX_FULL], annotation.diagnoses[MAX_FULL:]
    for diag in shown:
        message = annotated(diag, bot.offer(diag, where.channel), annotation)
        opens = diag.table in annotation.opens
        if opens:  # the incident's card: the state line under its header, shown in the channel too
            message = [Block.parse(b) for b in with_state(to_dicts(message), opening_state(diag))]
        ts = Poster(client).post(where.channel, blocks.fallback_text(diag), message, thread_ts=where.ts,
                                 broadcast=opens)
        if ts is None:
            return  # the bot may not post there: one warning in the log, not one per reply
        if opens and cards is not None:
            cards.opened(Incident(diag.table, where.channel, where.ts, ts, diag.generated_at.timestamp(),
                                  diag.verdict.section.value, body=json.dumps(to_dicts(message)),
                                  state=opening_state(diag)))
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


def annotated(diag: Diagnosis, offers: list, annotation: Annotation) -> list[Block]:
    """A diagnosis under an alert: a lifted snooze said first, the owners named on a broken table, and the
    Snooze menu last, within Slack's 50 blocks."""
    extra: list[Block] = []
    if (lifted := annotation.lifted_for(diag.table)) is not None:
        extra.append(SectionBlock(text=MarkdownTextObject(text=f":alarm_clock: {snoozed_line(lifted)}, lifted: now "
                                                                f"*{diag.verdict.section}*")))
    if diag.owners and not diag.verdict.healthy and diag.table not in annotation.opens:
        extra.append(ContextBlock(elements=[MarkdownTextObject(
            text="Owners: " + ", ".join(f"`{o}`" for o in diag.owners) + " (mentioned on this incident's card)")]))
    body = blocks.diagnosis_blocks(diag, offers, owners=False)
    return [*body[:1], *extra, *body[1:]][:blocks.MAX_BLOCKS - 1] + [snooze_menu(diag.table)]


def post_recovery(client: WebClient, note: RecoveryNote, cards: Cards | None = None) -> None:
    reply(client, note.thread, blocks.verdict_lines(note.diagnoses, "Recovery reported. Current state: "))
    if cards is not None:
        healthy = {d.table: d for d in note.diagnoses if d.verdict.healthy}
        for incident in note.resolved:  # ended by the core already: the card is drawn a last time
            if incident.table in healthy:
                cards.draw(incident, verified_state(None, healthy[incident.table]), resolved=True)


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
