"""The approval request message: what will run, who asked, who decided, progress and outcome.
Drawn again (chat.update) at every transition; the buttons go once the request is decided."""
from __future__ import annotations

from datetime import datetime, timezone

from slack_sdk.models.blocks import (
    ActionsBlock, Block, ButtonElement, ContextBlock, HeaderBlock, MarkdownTextObject, SectionBlock,
)

from bot.remediation.approvals import ApprovalRequest, State
from bot.remediation.fixes import FIXES
from bot.remediation.service import OpenRequest

from .blocks import MESSAGE_TEXT_BUDGET, code_sections, confirm_dialog, escape, mention, truncate
from .ids import ActionId

STATE_TITLE = {State.REQUESTED: "approval needed", State.APPROVED: "approved, queued", State.RUNNING: "running",
               State.SUCCEEDED: "done", State.FAILED: "failed", State.REJECTED: "rejected",
               State.EXPIRED: "expired", State.CANCELLED: "cancelled"}
STATE_EMOJI = {State.REQUESTED: ":hourglass_flowing_sand:", State.APPROVED: ":white_check_mark:",
               State.RUNNING: ":gear:", State.SUCCEEDED: ":large_green_circle:", State.FAILED: ":red_circle:",
               State.REJECTED: ":no_entry_sign:", State.EXPIRED: ":alarm_clock:", State.CANCELLED: ":no_entry_sign:"}


# What the other sections (who, facts, decisions, progress, outcome) leave of a message's text.
STEPS_BUDGET = MESSAGE_TEXT_BUDGET - 4500


def clock_time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M UTC") if epoch else "?"


def request_blocks(req: ApprovalRequest) -> list[Block]:
    label = FIXES[req.action].label
    blocks: list[Block] = [HeaderBlock(text=truncate(f"{label} {req.table}: {STATE_TITLE.get(req.state, req.state)}", 150))]
    who = (f"{STATE_EMOJI.get(req.state, '')} *Requested by* {mention(req.requester)} at {clock_time(req.created_at)} · "
           f"needs {req.people} people (the requester and {req.people - 1} approver)")
    if req.state is State.REQUESTED:
        who += f" · *expires* {clock_time(req.expires_at)}"
    if req.reason:
        who += f"\n*Why:* {escape(req.reason)}"
    blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(who, 3000))))
    # Every step an approver agrees to, over several sections if need be, within the message's budget.
    blocks += code_sections("*What will run*", [f"{i}. {s}" for i, s in enumerate(req.plan_steps, 1)], STEPS_BUDGET)
    if req.plan_facts:
        facts = "\n".join(f"• {escape(f)}" for f in req.plan_facts)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(f"*When requested*\n{facts}", 1000))))
    decided = _decisions(req)
    if decided:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=decided)))
    progress = [f"• {escape(p)}" for p in req.progress]
    if req.live:
        progress.append(f"• _{escape(req.live)}_")
    if progress:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="*Progress*\n" + _latest(progress, 1500))))
    if req.outcome:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=truncate(f"*Outcome*: {escape(req.outcome)}", 1000))))
    if req.state is State.REQUESTED:
        blocks.append(ActionsBlock(elements=[
            ButtonElement(text="Approve", action_id=ActionId.APPROVE, value=req.id, style="primary",
                          confirm=confirm_dialog("Approve?", f"{label} of {req.table} runs as soon as enough approvers "
                                                 "agree.", "Approve")),
            ButtonElement(text="Reject", action_id=ActionId.REJECT, value=req.id, style="danger"),
        ]))
    elif req.state is State.APPROVED or (req.state is State.RUNNING and not req.changed):
        # Until its first change runs, an approved request can still be called off.
        blocks.append(ActionsBlock(elements=[
            ButtonElement(text="Cancel", action_id=ActionId.CANCEL, value=req.id, style="danger",
                          confirm=confirm_dialog("Cancel?", f"{label} of {req.table} will not run.", "Cancel it",
                                                 deny="Keep it")),
        ]))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"request `{req.id}` · `syncbot audit --table "
                                                                 f"{escape(req.table)}` for the trail")]))
    return blocks


def _latest(lines: list[str], limit: int) -> str:
    """The newest lines that fit in `limit` characters (a re-sync can report for hours), earlier ones counted."""
    kept: list[str] = []
    used = 40  # room for the count
    for line in reversed(lines):
        line = truncate(line, 300)
        if used + len(line) + 1 > limit:
            break
        kept.insert(0, line)
        used += len(line) + 1
    earlier = len(lines) - len(kept)
    return "\n".join(([f"… {earlier} earlier step(s)"] if earlier else []) + kept)


def _decisions(req: ApprovalRequest) -> str:
    lines = []
    others = [u for u in req.approved_by if u != req.requester]
    if others:
        lines.append("*Approved by* " + ", ".join(mention(u) for u in others) + f" at {clock_time(req.approved_at)}")
    if req.state in (State.REJECTED, State.CANCELLED):
        by = "syncbot" if req.decided_by == "syncbot" else mention(req.decided_by)
        lines.append(f"*{'Rejected' if req.state is State.REJECTED else 'Cancelled'} by* {by} at {clock_time(req.finished_at)}")
    if req.state is State.EXPIRED:
        lines.append(f"*Expired* at {clock_time(req.finished_at)}: approved, but no worker started it in time"
                     if req.approved_at else f"*Expired* at {clock_time(req.expires_at)} without enough approvals")
    if req.started_at:
        lines.append(f"*Started* {clock_time(req.started_at)}")
    if req.state in (State.SUCCEEDED, State.FAILED):
        lines.append(f"*Finished* {clock_time(req.finished_at)}")
    return "\n".join(lines)


def fallback(req: ApprovalRequest) -> str:
    return f"{FIXES[req.action].label} {req.table}: {STATE_TITLE.get(req.state, req.state)}"


def open_request_text(seen: OpenRequest, where: str) -> str:
    """The private answer to an ask for what is already asked for: who asked, when, how it stands, and
    `where` (a link to its message) to follow or approve it."""
    req = seen.request
    label = FIXES[req.action].label
    who = "You" if req.requester == seen.asker else mention(req.requester)
    text = (f":information_source: *{label}* on `{escape(req.table)}` is already asked for: {who} asked at "
            f"{clock_time(req.created_at)}, and it is {_standing(req)}. Nothing new was made. {where}")
    if seen.may_approve:
        text += ": you can approve it there."
    elif req.state is State.REQUESTED and req.requester == seen.asker:
        text += ": it waits for another approver."
    elif req.state is State.REQUESTED and seen.asker in req.approved_by:
        text += ": you approved it already."
    else:
        text += "."
    return text


def resync_pending_text(seen: OpenRequest, where: str) -> str:
    """Added to a quick fix's answer while a re-sync of the same table waits: the re-sync truncates and
    reloads the table, so the person can decide whether it should still run."""
    req = seen.request
    undo = "reject" if req.state is State.REQUESTED else "cancel"
    return (f":warning: A re-sync of `{escape(req.table)}` is pending: {mention(req.requester)} asked at "
            f"{clock_time(req.created_at)}, and it is {_standing(req)}. It truncates and reloads the table, redoing what "
            f"this fix changes; if this fix is enough, {undo} it. {where}.")


def _standing(req: ApprovalRequest) -> str:
    if req.state is State.REQUESTED:
        return (f"waiting for approval ({1 + len(req.approved_by)} of {req.people} people so far, until "
                f"{clock_time(req.expires_at)})")
    if req.state is State.APPROVED:
        return f"approved at {clock_time(req.approved_at)} and waiting for a worker to start it"
    return f"running since {clock_time(req.started_at)}"
