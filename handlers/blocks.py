"""Block Kit for diagnoses, built with slack_sdk's typed models, within Slack's limits
(50 blocks a message, 3000 characters a section, 150 a header, 300 a confirm dialog's text). Slack
also refuses a message whose blocks together carry much over 13,000 characters (msg_blocks_too_long,
undocumented: slackapi/bolt-js#2509), so every message keeps its text under MESSAGE_TEXT_BUDGET."""
from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock, Block, ButtonElement, ConfirmObject, ContextBlock, DividerBlock, HeaderBlock,
    MarkdownTextObject, Option, OverflowMenuElement, PlainTextObject, SectionBlock,
)

from bot.models import CheckResult, Diagnosis, Section, Status, overall, worst_first
from bot.offers import Offer
from bot.redaction import redact
from bot.remediation.fixes import FIXES

from .ids import ActionId, BlockId, fix_action_id

SECTION_LIMIT = 3000
MAX_BLOCKS = 50
MESSAGE_TEXT_BUDGET = 12_000
FLEET_TEXT_BUDGET = MESSAGE_TEXT_BUDGET
# A message's plain `text` (no blocks): Slack truncates past 40,000 characters and advises under 4,000.
PLAIN_TEXT_LIMIT = 3000
VERDICT_LIMIT = 2000
EMOJI = {Status.OK: ":large_green_circle:", Status.WARNING: ":large_yellow_circle:",
         Status.FAILING: ":red_circle:", Status.UNKNOWN: ":white_circle:"}
RUNBOOK_REF = {Section.LAGGING: "§1 Sync Lagging / Data Missing", Section.SCHEMA: "§2 Schema Mismatch",
               Section.STALLED: "§3 DMS Task Stalled", Section.HEALTHY: "no action needed",
               Section.UNKNOWN: "re-run when the backends answer"}
_MAX_DETAIL_LINES = 12  # the DMS check of a broken task: its fields, then its log's few distinct lines


def escape(text: str) -> str:
    """Everything a message echoes (errors, names, outcomes) passes here: configured secrets are
    masked first, then Slack's mrkdwn control characters, so nothing can mention @channel or forge a link."""
    return redact(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def mention(who: str) -> str:
    """A user id (U…/W…) or a usergroup id (S…) as Slack renders a mention of it."""
    return f"<!subteam^{who}>" if who.startswith("S") else f"<@{who}>"


def truncate(text: str, limit: int = SECTION_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diagnosis_blocks(diag: Diagnosis, offers: list[Offer], owners: bool = True) -> list[Block]:
    """`owners`: a table that is not Healthy mentions its owners (an alert's annotation does it once
    per incident, on its card, and passes False)."""
    v = diag.verdict
    head = f"{diag.table}: {v.section}"
    blocks: list[Block] = [HeaderBlock(text=truncate(head, 150))]
    lines = [f"{EMOJI[overall(diag)]} *{escape(v.summary)}*",
             f"*Where:* {v.where}   ·   *Runbook:* {RUNBOOK_REF[v.section]}"]
    lines += [f"• {escape(r)}" for r in v.reasons]
    if owners and diag.owners and not v.healthy:
        lines.append("*Owners:* " + ", ".join(mention(o) for o in diag.owners))
    blocks.append(SectionBlock(block_id=BlockId.VERDICT,
                               text=MarkdownTextObject(text=truncate("\n".join(lines), VERDICT_LIMIT))))
    blocks.append(DividerBlock())
    blocks += check_blocks(diag.checks, MESSAGE_TEXT_BUDGET - VERDICT_LIMIT - 500)  # header and footer are short
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


def check_blocks(checks: tuple[CheckResult, ...], room: int) -> list[SectionBlock]:
    """Each check in full when they fit in `room` together; otherwise the short ones stay whole and
    the long ones share what is left."""
    full = [check_block(c) for c in checks]
    sizes = [len(b.text.text) for b in full]
    if sum(sizes) <= room:
        return full
    fair = room // max(len(checks), 1)
    kept = sum(size for size in sizes if size <= fair)
    share = (room - kept) // max(sum(1 for size in sizes if size > fair), 1)
    return [block if size <= fair else check_block(check, share) for check, block, size in zip(checks, full, sizes)]


def check_block(check: CheckResult, limit: int = SECTION_LIMIT) -> SectionBlock:
    """The details (the exact ALTER TABLEs of a drift, the files that failed) are what a person acts
    on, so they get their room first and the summary is cut to what is left; details that do not fit
    are counted. `syncbot diagnose <table>` prints everything."""
    trend = f"\n`{check.trend}`" if check.trend else ""
    details = _details(check.details, limit - 300)  # at least the check's name and a line of summary
    head = f"{EMOJI[check.status]} *{check.name}*: "
    summary = truncate(escape(check.summary), max(limit - len(head) - len(trend) - len(details), 80))
    return SectionBlock(text=MarkdownTextObject(text=truncate(head + summary + trend + details, limit)))


def _details(lines: tuple[str, ...], budget: int) -> str:
    """Up to _MAX_DETAIL_LINES whole lines within budget, as a code block, then how many were left out."""
    shown: list[str] = []
    used = 0
    for line in lines[:_MAX_DETAIL_LINES]:
        line = truncate(escape(line), 300)
        if shown and used + len(line) + 1 > budget:
            break
        shown.append(line)
        used += len(line) + 1
    if not shown:
        return ""
    text = "\n```" + "\n".join(shown) + "```"
    if len(lines) > len(shown):
        text += f"\n… and {len(lines) - len(shown)} more not shown"
    return text


def fix_button(offer: Offer) -> ButtonElement:
    fix = FIXES[offer.action]
    label, destructive = fix.label, fix.destructive
    confirm = confirm_dialog(f"{label} needs {fix.people} people" if destructive else f"{label}?",
                             fix.confirm_text(offer.table), "Request approval" if destructive else label,
                             style="danger" if destructive else None)
    return ButtonElement(text=label, action_id=fix_action_id(offer.action), value=offer.id,
                         style="danger" if destructive else "primary", confirm=confirm)


CONFIRM_TEXT_LIMIT = 300  # Slack: the confirmation dialog's text is plain_text, at most 300 characters


def confirm_dialog(title: str, text: str, confirm: str, style: str | None = None, deny: str = "Cancel") -> ConfirmObject:
    """Slack's confirmation dialog takes plain_text only (slack_sdk would send a bare string as mrkdwn)."""
    return ConfirmObject(title=PlainTextObject(text=truncate(title, 100)),
                         text=PlainTextObject(text=truncate(text, CONFIRM_TEXT_LIMIT)),
                         confirm=confirm, deny=deny, style=style)


def code_sections(title: str, lines: list[str], budget: int) -> list[SectionBlock]:
    """Lines (SQL statements, AWS calls) as code blocks over as many sections as `budget` characters
    allow, each line whole unless it alone is longer than a section; the lines left out are counted."""
    sections: list[SectionBlock] = []
    chunk: list[str] = []
    size = used = shown = 0
    for line in lines:
        line = truncate(escape(line), SECTION_LIMIT - 200)
        if used + len(line) + 1 > budget and shown:
            break
        if chunk and size + len(line) + 1 > SECTION_LIMIT - len(title) - 20:
            sections.append(_code(title if not sections else "", chunk))
            chunk, size = [], 0
        chunk.append(line)
        size, used, shown = size + len(line) + 1, used + len(line) + 1, shown + 1
    if chunk:
        sections.append(_code(title if not sections else "", chunk))
    if shown < len(lines):
        sections.append(SectionBlock(text=MarkdownTextObject(text=f"… and {len(lines) - shown} more not shown here")))
    return sections


def _code(title: str, lines: list[str]) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=(f"{title}\n" if title else "") + "```" + "\n".join(lines) + "```"))


def more_menu(offers: list[Offer]) -> OverflowMenuElement:
    return OverflowMenuElement(action_id=ActionId.MORE, options=[
        Option(text=f"{FIXES[o.action].label}…", value=o.id) for o in offers])


def fleet_blocks(diags: list[Diagnosis]) -> list[Block]:
    """One line a table, worst first. Slack refuses big messages below the documented sums
    (msg_blocks_too_long), so the text is capped and the rest, healthiest last, becomes a count."""
    ordered = worst_first(diags)
    unhealthy = sum(1 for d in ordered if overall(d) is not Status.OK)
    blocks: list[Block] = [HeaderBlock(text=f"Sync status: {len(ordered)} tables, {unhealthy} need attention")]
    lines = [verdict_line(d, owners=True) for d in ordered]
    shown = used = in_chunk = 0
    chunk: list[str] = []
    for line in lines:
        if shown and used + len(line) > FLEET_TEXT_BUDGET - 300:  # the header and the footer need the rest
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


def verdict_line(diag: Diagnosis, owners: bool = False) -> str:
    """One table's state in one line: the fleet view (with a broken table's owners) and recovery notes."""
    line = f"{EMOJI[overall(diag)]} *{escape(diag.table)}* — {diag.verdict.section}"
    if diag.verdict.healthy:
        return line
    named = f" — {', '.join(mention(o) for o in diag.owners)}" if owners and diag.owners else ""
    return f"{line} — {diag.verdict.where}{named}"


def verdict_lines(diags: list[Diagnosis], prefix: str = "", limit: int = PLAIN_TEXT_LIMIT) -> str:
    """Many tables' verdict lines on one line (a recovery note for a whole DMS task), worst first,
    within `limit` characters: the healthiest that do not fit become a count."""
    ordered = worst_first(diags)
    parts: list[str] = []
    used = len(prefix)
    for i, diag in enumerate(ordered):
        line, tail = verdict_line(diag), _more(ordered[i + 1:])
        # Room for this line and for the count that would follow it; otherwise the count goes here.
        if parts and used + 2 + len(line) + (2 + len(tail) if tail else 0) > limit:
            parts.append(_more(ordered[i:]))
            break
        used += len(line) + (2 if parts else 0)
        parts.append(line)
    return truncate(prefix + "; ".join(parts), limit)


def _more(rest: list[Diagnosis]) -> str:
    if not rest:
        return ""
    healthy = sum(1 for d in rest if overall(d) is Status.OK)
    return f"… and {len(rest)} more tables ({healthy} healthy): `/sync-status` lists them all"


def fallback_text(diag: Diagnosis) -> str:
    """The notification text (and what screen readers get) for a diagnosis message."""
    return f"{diag.table}: {diag.verdict.section} ({diag.verdict.where})"


def to_dicts(blocks: list[Block]) -> list[dict]:
    return [b.to_dict() for b in blocks]
