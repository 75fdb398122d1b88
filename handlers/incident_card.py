"""The incident card: the first annotation of a table's incident, posted in the alert's thread and
also to the channel (reply_broadcast, https://api.slack.com/methods/chat.postMessage#arg_reply_broadcast),
so the channel shows its state without opening the thread. chat.update keeps it current: a fix asked
for, approved, running (step n of m), and "resolved", which only a fresh Healthy diagnosis may say."""
from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from bot.incidents import Incident, Incidents
from bot.models import Diagnosis
from bot.remediation.approvals import ApprovalRequest, State
from bot.remediation.fixes import FIXES

from .blocks import escape, mention, to_dicts, truncate
from .poster import Poster

log = logging.getLogger(__name__)
STATE_BLOCK = "syncbot.card.state"


def _hm(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%H:%M UTC")


def owners_line(owners: tuple[str, ...]) -> str:
    return "*Owners:* " + ", ".join(mention(o) for o in owners) if owners else ""


def opening_state(diag: Diagnosis) -> str:
    state = f":rotating_light: *Incident open* since {_hm(diag.generated_at.timestamp())}: {diag.verdict.section}"
    return state + (f" · {owners_line(diag.owners)}" if diag.owners else "")


def with_state(body: list[dict], state: str) -> list[dict]:
    """The card's blocks (as posted) with its state line under the header, in place of any earlier one."""
    rest = [b for b in body if b.get("block_id") != STATE_BLOCK]
    line = SectionBlock(block_id=STATE_BLOCK, text=MarkdownTextObject(text=truncate(state, 3000))).to_dict()
    return [*rest[:1], line, *rest[1:]]


def request_state(req: ApprovalRequest) -> str:
    label = FIXES[req.action].label
    asked = f"asked by {mention(req.requester)}"
    match req.state:
        case State.REQUESTED:
            return f":hourglass_flowing_sand: {label} requested ({asked}), waiting for approval"
        case State.APPROVED:
            return f":white_check_mark: {label} approved ({asked}), queued"
        case State.RUNNING:
            total = len(req.plan_steps)
            step = f", step {min(req.step_done + 2, total)} of {total}" if total > 1 else ""
            return f":gear: fix running: {label} ({asked}){step}"
        case State.SUCCEEDED:
            return f":mag: {label} succeeded ({asked}); checking the table again…"
        case State.FAILED:
            return f":x: {label} failed ({asked}): {escape(req.outcome)}"
    return f":no_entry_sign: {label} {req.state} ({asked})"


def verified_state(req: ApprovalRequest | None, diag: Diagnosis) -> str:
    """After a fix, what a fresh diagnosis says. Only a Healthy one resolves the incident."""
    if diag.verdict.healthy:
        return f":large_green_circle: *Resolved* at {_hm(diag.generated_at.timestamp())}, verified healthy by a fresh diagnosis"
    did = f"{FIXES[req.action].label} succeeded, but " if req is not None else ""
    return (f":red_circle: {did}a fresh diagnosis at {_hm(diag.generated_at.timestamp())} says "
            f"*{diag.verdict.section}*: not resolved")


class Cards:
    def __init__(self, poster: Poster, incidents: Incidents):
        self.poster, self.incidents = poster, incidents

    def opened(self, incident: Incident) -> None:
        """Records a card just posted; a replica that opened the incident first keeps its own."""
        self.incidents.open(incident)

    def show(self, table: str, state: str, *, resolved: bool = False) -> bool:
        """Draws the table's card again with `state`; `resolved` ends the incident (and the card's buttons go)."""
        incident = self.incidents.close(table) if resolved else self.incidents.set_state(table, state)
        return incident is not None and self.draw(incident, state, resolved=resolved)

    def draw(self, incident: Incident, state: str, *, resolved: bool = False) -> bool:
        if not incident.card:
            return False
        table = incident.table
        body = [b for b in json.loads(incident.body or "[]") if not (resolved and b.get("type") == "actions")]
        blocks = [Block.parse(b) for b in with_state(body, state)]
        return self.poster.update(incident.channel, incident.card, f"{table}: {state}"[:150], blocks)

    def on_request(self, req: ApprovalRequest) -> None:
        if self.incidents.is_open(req.table):
            self.show(req.table, request_state(req))

    def verified(self, req: ApprovalRequest | None, diag: Diagnosis) -> None:
        if self.incidents.is_open(diag.table):
            self.show(diag.table, verified_state(req, diag), resolved=diag.verdict.healthy)


def body_of(blocks: list[Block]) -> str:
    return json.dumps(to_dicts(blocks))
