"""The App Home: app_home_opened publishes (views.publish, https://api.slack.com/methods/views.publish)
a home for the person who opened it, from what is stored (bot.home): nothing is diagnosed because it
was opened. Approve and Reject there are the channel's own buttons (the same action ids, the same Lua
transition with its self-approval, plan and expiry checks); End ends a snooze."""
from __future__ import annotations

import logging
import time

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock, Block, ButtonElement, ContextBlock, DividerBlock, HeaderBlock, MarkdownTextObject, SectionBlock,
)
from slack_sdk.models.views import View

from bot.core import SyncBot
from bot.home import Home, home_for
from bot.remediation.access import Approvers
from bot.remediation.approvals import ApprovalRequest, Approvals
from bot.remediation.fixes import FIXES
from bot.snoozes import Snoozes

from .approval_blocks import STATE_TITLE, clock_time
from .blocks import confirm_dialog, escape, mention, truncate
from .ids import ActionId
from .snooze import end_button, snoozed_line

log = logging.getLogger(__name__)


def _ago(seconds: float) -> str:
    minutes = int(seconds // 60)
    return "just now" if minutes < 1 else f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"


def _request_line(req: ApprovalRequest) -> str:
    why = f"\n_{escape(truncate(req.reason, 300))}_" if req.reason else ""
    return (f"*{FIXES[req.action].label}* of `{escape(req.table)}` — {STATE_TITLE.get(req.state, req.state)} · "
            f"asked by {mention(req.requester)} at {clock_time(req.created_at)}{why}")


def _section(text: str, accessory=None) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=truncate(text, 3000)), accessory=accessory)


def home_blocks(home: Home, now: float | None = None) -> list[Block]:
    now = time.time() if now is None else now
    blocks: list[Block] = [HeaderBlock(text="Waiting for your approval")]
    for req in home.to_approve:
        blocks += [_section(_request_line(req)), ActionsBlock(elements=[
            ButtonElement(text="Approve", action_id=ActionId.APPROVE, value=req.id, style="primary",
                          confirm=confirm_dialog("Approve?", f"{FIXES[req.action].label} of {req.table} runs as soon "
                                                 "as enough approvers agree.", "Approve")),
            ButtonElement(text="Reject", action_id=ActionId.REJECT, value=req.id, style="danger")])]
    if not home.to_approve:
        blocks.append(_section("_Nothing waits for you._"))
    blocks += [DividerBlock(), HeaderBlock(text="Your open requests")]
    blocks += [_section(_request_line(r)) for r in home.mine] or [_section("_None._")]
    blocks += [DividerBlock(), HeaderBlock(text="Fixes running now")]
    blocks += [_section(_request_line(r)) for r in home.running] or [_section("_None._")]
    blocks += [DividerBlock(), HeaderBlock(text="Tables not Healthy")]
    fleet = home.fleet
    if not fleet.at:
        blocks.append(_section("_No fleet round recorded yet: `/sync-status` (no table) runs one._"))
    else:
        lines = [f"• *{escape(b.table)}* — {b.section} — {b.where}"
                 + (" — " + ", ".join(mention(o) for o in b.owners) if b.owners else "")
                 + (" · _yours_" if b.table in home.owned else "") for b in fleet.broken[:40]]
        blocks.append(_section("\n".join(lines) if lines else "_Every table was Healthy._"))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(
            text=f"From the last fleet round (`/sync-status`, {fleet.tables} tables) at {clock_time(fleet.at)}, "
                 f"{_ago(now - fleet.at)}; opening this Home runs no diagnosis.")]))
    blocks += [DividerBlock(), HeaderBlock(text="Snoozed")]
    blocks += [_section(f"*{escape(s.table)}* {snoozed_line(s)}", accessory=end_button(s.table))
               for s in home.snoozes] or [_section("_No table is snoozed._")]
    return blocks[:100]


class HomePublisher:
    def __init__(self, bot: SyncBot, approvals: Approvals, approvers: Approvers):
        self.bot, self.approvals, self.approvers = bot, approvals, approvers
        self.snoozes = Snoozes(bot.redis)

    def publish(self, client, user: str) -> None:
        home = home_for(user, self.approvals, self.approvers, self.snoozes, [t.name for t in self.bot.catalog.tables])
        try:
            client.views_publish(user_id=user, view=View(type="home", blocks=home_blocks(home)).to_dict())
        except SlackApiError as exc:
            log.warning("views.publish for %s failed: %s", user, exc.response.get("error"))


def register(app: App, publisher: HomePublisher) -> None:
    @app.event("app_home_opened")
    def home_opened(event, client):
        if event.get("tab", "home") == "home":
            publisher.publish(client, event["user"])
