"""Block Kit for diagnoses, built with slack_sdk's typed models, within Slack's limits
(50 blocks a message, 3000 characters a section, 150 a header)."""
from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock, Block, ButtonElement, ConfirmObject, ContextBlock, DividerBlock, HeaderBlock,
    MarkdownTextObject, Option, OverflowMenuElement, SectionBlock,
)

from bot.models import ACTION_LABELS, CheckResult, Diagnosis, Section, Status
from bot.offers import Offer
from bot.remediation.policy import POLICIES
from bot.models import overall, worst_first

from .ids import MORE_ACTION, BlockId, fix_action_id

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
FLEET_TEXT_BUDGET = 12_000
EMOJI = {Status.OK: ":large_green_circle:", Status.WARNING: ":large_yellow_circle:",
         Status.FAILING: ":red_circle:", Status.UNKNOWN: ":white_circle:"}
RUNBOOK_REF = {Section.LAGGING: "§1 Sync Lagging / Data Missing", Section.SCHEMA: "§2 Schema Mismatch",
               Section.STALLED: "§3 DMS Task Stalled", Section.HEALTHY: "no action needed",
               Section.UNKNOWN: "re-run when the backends answer"}
_MAX_DETAIL_LINES = 12  # the DMS check of a broken task: its fields, then its log's few distinct lines


def escape(text: str) -> str:
    """Slack mrkdwn control characters, so nothing echoed can mention @channel or forge a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(who: str) -> str:
    """A user id (U…/W…) or a usergroup id (S…) as Slack renders a mention of it."""
    return f"<!subteam^{who}>" if who.startswith("S") else f"<@{who}>"


def truncate(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diagnosis_blocks(diag: Diagnosis, offers: list[Offer]) -> list[Block]:
    v = diag.verdict
    head = f"{diag.table}: {v.section}"
    blocks: list[Block] = [HeaderBlock(text=truncate(head, 150))]
    lines = [f"{EMOJI[overall(diag)]} *{escape(v.summary)}*",
             f"*Where:* {v.where}   ·   *Runbook:* {RUNBOOK_REF[v.section]}"]
    lines += [f"• {escape(r)}" for r in v.reasons]
    blocks.append(SectionBlock(block_id=BlockId.VERDICT, text=MarkdownTextObject(text=truncate("\n".join(lines)))))
    blocks.append(DividerBlock())
    blocks += [check_block(c) for c in diag.checks]
    # The verdict's fixes are buttons; anything offered for every table waits in the overflow menu,
    # so it never crowds them.
    fixes = [fix_button(o) for o in offers if o.action in diag.actions]
    more = [o for o in offers if o.action not in diag.actions]
    if fixes or more:
        blocks.append(ActionsBlock(block_id=BlockId.FIXES, elements=[*fixes, *([more_menu(more)] if more else [])]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"`{escape(diag.source)}` · checked in {diag.elapsed_ms} ms at {diag.generated_at:%H:%M:%S} UTC "
             f"· `/sync-status {escape(diag.table)}` to re-run")]))
    return blocks[:MAX_BLOCKS]


def check_block(check: CheckResult) -> SectionBlock:
    text = f"{EMOJI[check.status]} *{check.name}*: {escape(check.summary)}"
    if check.trend:
        text += f"\n`{check.trend}`"
    details = list(check.details[:_MAX_DETAIL_LINES])
    if len(check.details) > _MAX_DETAIL_LINES:
        details.append(f"… and {len(check.details) - _MAX_DETAIL_LINES} more")
    if details:
        text += "\n```" + escape("\n".join(details)) + "```"
    return SectionBlock(text=MarkdownTextObject(text=truncate(text)))


def fix_button(offer: Offer) -> ButtonElement:
    label = ACTION_LABELS[offer.action]
    destructive = POLICIES[offer.action].destructive
    confirm = ConfirmObject(
        title="Re-sync needs two people" if destructive else f"{label}?",
        text=(f"This asks a second approver to truncate and reload *{escape(offer.table)}*."
              if destructive else f"{label} for *{escape(offer.table)}*. This changes production."),
        confirm="Request approval" if destructive else label,
        deny="Cancel",
        style="danger" if destructive else None,
    )
    return ButtonElement(text=label, action_id=fix_action_id(offer.action), value=offer.id,
                         style="danger" if destructive else "primary", confirm=confirm)


def more_menu(offers: list[Offer]) -> OverflowMenuElement:
    return OverflowMenuElement(action_id=MORE_ACTION, options=[
        Option(text=f"{ACTION_LABELS[o.action]}…", value=o.id) for o in offers])


def fleet_blocks(diags: list[Diagnosis]) -> list[Block]:
    """One line a table, worst first. Slack refuses big messages below the documented sums
    (msg_blocks_too_long), so the text is capped and the rest, healthiest last, becomes a count."""
    ordered = worst_first(diags)
    unhealthy = sum(1 for d in ordered if overall(d) is not Status.OK)
    blocks: list[Block] = [HeaderBlock(text=f"Sync status: {len(ordered)} tables, {unhealthy} need attention")]
    lines = [verdict_line(d) for d in ordered]
    shown = used = in_chunk = 0
    chunk: list[str] = []
    for line in lines:
        if shown and used + len(line) > FLEET_TEXT_BUDGET:
            break
        if in_chunk + len(line) > SECTION_LIMIT:
            blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
            chunk, in_chunk = [], 0
        chunk.append(line)
        shown, used, in_chunk = shown + 1, used + len(line) + 1, in_chunk + len(line) + 1
    if chunk:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="\n".join(chunk))))
    footer = "`/sync-status <table>` for the evidence and the fixes"
    if shown < len(lines):
        rest = ordered[shown:]
        healthy = sum(1 for d in rest if overall(d) is Status.OK)
        footer = f"… and {len(rest)} more tables not shown ({healthy} healthy) · " + footer
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=footer)]))
    return blocks


def verdict_line(diag: Diagnosis) -> str:
    """One table's state in one line: the fleet view and recovery notes."""
    line = f"{EMOJI[overall(diag)]} *{escape(diag.table)}* — {diag.verdict.section}"
    return line if diag.verdict.healthy else f"{line} — {diag.verdict.where}"


def fallback_text(diag: Diagnosis) -> str:
    """The notification text (and what screen readers get) for a diagnosis message."""
    return f"{diag.table}: {diag.verdict.section} ({diag.verdict.where})"


def to_dicts(blocks: list[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]
