"""The maintenance report in Slack: Block Kit within Slack's limits, and the scheduled post.

The worker's entry point is `post_due(bot, client, now=None)`: call it every minute or so from every
replica; it posts `[maintenance]`'s report to its channel once per schedule period."""
from __future__ import annotations

from datetime import datetime

from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock

from bot.core import SyncBot
from bot.maintenance import Finding, MaintenanceReport, post_due_maintenance
from bot.models import Status

from .blocks import EMOJI, MAX_BLOCKS, MESSAGE_TEXT_BUDGET, escape, truncate
from .ids import COMMAND
from .poster import Poster

_MAX_DETAIL_LINES = 4
_OK_TEXT_LIMIT = 2000
_NOTES_ROOM = 300  # the "… and N more" note and the footer


def report_blocks(report: MaintenanceReport) -> list[Block]:
    """Everything that needs attention in full (fix included), then one line for what is fine; the
    whole message within MESSAGE_TEXT_BUDGET, what does not fit counted."""
    headline = truncate(report.headline(), 150)
    blocks: list[Block] = [HeaderBlock(text=headline), DividerBlock()]
    attention = report.needing_attention()
    fine = ok_text(report)
    room = MAX_BLOCKS - len(blocks) - 3  # the "more" note, the OK line and the footer
    budget = MESSAGE_TEXT_BUDGET - len(headline) - len(fine) - _NOTES_ROOM
    used = shown = 0
    for finding in attention:
        text = truncate(finding_text(finding))
        if shown == room or used + len(text) > budget:
            break
        blocks.append(SectionBlock(text=MarkdownTextObject(text=text)))
        used, shown = used + len(text), shown + 1
    if shown < len(attention):
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"… and {len(attention) - shown} more findings need attention: `syncbot maintenance` prints them all")]))
    if fine:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=fine)]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"checked in {report.elapsed_ms} ms at {report.generated_at:%Y-%m-%d %H:%M} UTC "
             f"· `{COMMAND} maintenance` to re-run")]))
    return blocks


def finding_text(finding: Finding) -> str:
    where = f"{escape(finding.table)} (`{escape(finding.subject)}`)" if finding.table else f"`{escape(finding.subject)}`"
    lines = [f"{EMOJI[finding.status]} *{finding.topic}* · {where}: {escape(finding.summary)}"]
    if finding.trend:
        lines.append(f"`{finding.trend}`")
    lines += [f"• {escape(d)}" for d in finding.details[:_MAX_DETAIL_LINES]]
    if finding.fix:
        lines.append(f"*Fix:* {escape(finding.fix)}")
    if finding.code:
        lines.append("```" + escape(finding.code) + "```")
    return "\n".join(lines)


def ok_text(report: MaintenanceReport) -> str:
    """What is fine, by topic, within _OK_TEXT_LIMIT; the names that do not fit are counted."""
    by_topic: dict[str, list[str]] = {}
    for finding in report.findings:
        if finding.status is Status.OK:
            by_topic.setdefault(finding.topic, []).append(finding.table or finding.subject)
    if not by_topic:
        return ""
    total = sum(len(names) for names in by_topic.values())
    text, named = f"{EMOJI[Status.OK]} OK —", 0
    room = _OK_TEXT_LIMIT - 60  # for the count of the rest
    for topic, names in by_topic.items():
        text += f"{' ·' if named else ''} *{topic}:*"
        for i, name in enumerate(names):
            piece = f"{',' if i else ''} {escape(name)}"
            if len(text) + len(piece) > room:
                return text + f" … and {total - named} more OK"
            text, named = text + piece, named + 1
    return text


def fallback_text(report: MaintenanceReport) -> str:
    return report.headline()


def post_report(client: WebClient, channel: str, report: MaintenanceReport) -> str | None:
    """Posts a report and returns its ts; None where the bot may not post (a scheduled post has no
    response_url), and the period is given back for the next try."""
    return Poster(client).post(channel, fallback_text(report), report_blocks(report))


def post_due(bot: SyncBot, client: WebClient, now: datetime | None = None) -> MaintenanceReport | None:
    """The worker's entry point: the scheduled report, posted once per period across replicas."""
    return post_due_maintenance(bot, lambda channel, report: post_report(client, channel, report), now)
