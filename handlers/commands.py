"""/sync-status: parse what was typed, acknowledge at once, then post the diagnosis to the channel."""
from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable

from slack_bolt import App
from slack_sdk.errors import SlackApiError

from bot.core import SyncBot
from bot.maintenance import maintenance_report
from bot.models import ActionKind
from bot.remediation.service import Remediation

from . import actions, blocks, maintenance, pictures
from .ids import COMMAND
from .poster import Poster
from .progress import SlackReporter
from .reasons import open_reason_form

log = logging.getLogger(__name__)
MAX_ARG = 128

HELP = f"""*{COMMAND}* runs the Aurora → DMS → S3 → Snowpipe → Snowflake runbook checks and says where the sync is broken.
• `{COMMAND} <table>`: every check for one table (by name, Aurora `schema.table`, or final table), with fix buttons
• `{COMMAND}`: every catalog table on one screen, worst first
• `{COMMAND} maintenance`: vacuum, WAL retention, the DMS instance and S3 clean-up, each with its fix
• `{COMMAND} resync <table> <reason…>`: ask for the runbook's re-sync (truncate, then a DMS reload) of any table,
  whatever its diagnosis says, and say why (without a reason a form asks for it); a second approver must approve it
  in the thread (also in every diagnosis's ⋯ menu)
• `{COMMAND} help`: this message"""


class RequestKind(StrEnum):
    """What a /sync-status text asks for."""

    HELP = "help"
    FLEET = "fleet"  # every catalog table
    MAINTENANCE = "maintenance"
    TABLE = "table"  # one table's diagnosis
    RESYNC = "resync"
    MALFORMED = "malformed"  # `arg` says why


@dataclass(frozen=True)
class Request:
    kind: RequestKind
    arg: str = ""
    reason: str = ""  # resync: why, as typed after the table


def parse(text: str | None) -> Request:
    words = (text or "").split()
    if not words:
        return Request(RequestKind.FLEET)
    if len(words) == 1 and words[0].lower() in ("help", "-h", "--help", "?"):
        return Request(RequestKind.HELP)
    if len(words) == 1 and words[0].lower() == "maintenance":
        return Request(RequestKind.MAINTENANCE)
    if words[0].lower() == "resync":
        if len(words) < 2:
            return Request(RequestKind.MALFORMED, f"`{COMMAND} resync` takes a table name and why.")
        found = _table(RequestKind.RESYNC, words[1])
        # The reason as typed after the table (its own spacing kept); its length is the core's to judge.
        reason = (text or "").strip().split(None, 2)[2] if len(words) > 2 else ""
        return Request(found.kind, found.arg, reason) if found.kind is RequestKind.RESYNC else found
    if len(words) > 1:
        return Request(RequestKind.MALFORMED, f"`{COMMAND}` takes one table name, not {len(words)} words.")
    return _table(RequestKind.TABLE, words[0])


def _table(kind: RequestKind, word: str) -> Request:
    if len(word) > MAX_ARG:
        return Request(RequestKind.MALFORMED, f"That table name is longer than {MAX_ARG} characters.")
    return Request(kind, word)


def register(app: App, bot: SyncBot, remediation: Remediation, reporter: SlackReporter,
             hold: Callable[[], None] = lambda: None) -> None:
    """`hold`: called once a diagnosis is in, before it is rendered and sent: a server holds the answer
    (and the work of rendering and sending it) while a burst of requests waits for its acks."""

    @app.command(COMMAND)
    def sync_status(ack, command, client):
        request = parse(command.get("text"))
        channel = command["channel_id"]
        if request.kind is RequestKind.HELP:
            ack(response_type="ephemeral", text=HELP)
        elif request.kind is RequestKind.MALFORMED:
            ack(response_type="ephemeral", text=f"{request.arg}\n\n{HELP}")
        elif request.kind is RequestKind.MAINTENANCE:
            ack(response_type="ephemeral", text="Checking vacuum, WAL retention, the DMS instance and S3 clean-up…")
            report = maintenance_report(bot)
            Poster(client).post(channel, maintenance.fallback_text(report), maintenance.report_blocks(report),
                                response_url=command.get("response_url", ""))
        elif request.kind is RequestKind.FLEET:
            ack(response_type="ephemeral", text=f"Checking all {len(bot.catalog.tables)} tables…")
            diags = bot.diagnose_all()
            hold()
            unhealthy = sum(1 for d in diags if not d.verdict.healthy)
            Poster(client).post(channel, f"Sync status: {len(diags)} tables, {unhealthy} need attention",
                                blocks.fleet_blocks(diags), response_url=command.get("response_url", ""))
        else:
            spec = bot.find(request.arg)
            if spec is None:
                ack(response_type="ephemeral", text=unknown_table_text(request.arg, bot.suggestions(request.arg),
                                                                      [t.name for t in bot.catalog.tables]))
                return
            if request.kind is RequestKind.RESYNC:
                ack(response_type="ephemeral", text=f"Preparing the re-sync request for *{spec.name}*…")
                request_resync(bot, remediation, reporter, spec.name, request.reason, command, client)
                return
            ack(response_type="ephemeral", text=f"Running the runbook checks for *{spec.name}*…")
            diag = bot.diagnose(spec)
            hold()
            offers = bot.offer(diag, channel)
            ts = Poster(client).post(channel, blocks.fallback_text(diag), blocks.diagnosis_blocks(diag, offers),
                                     response_url=command.get("response_url", ""))
            pictures.post_latency_picture(client, bot, spec, channel, ts)


def request_resync(bot: SyncBot, remediation: Remediation, reporter: SlackReporter, table: str, reason: str,
                   command: dict, client) -> None:
    """The same two-person request the ⋯ menu makes, asked for by whoever typed it; without a reason,
    the form asks for one (the command's trigger_id opens it)."""
    answer = remediation.request(table, ActionKind.RESYNC, command["user_id"], command["channel_id"], reason)
    if answer.needs_reason is not None and command.get("trigger_id"):
        open_reason_form(client, command["trigger_id"], answer.needs_reason, command.get("response_url", ""),
                         command["user_id"])
        return
    actions.show(answer, client, remediation, reporter, command.get("response_url", ""),
                 channel=command["channel_id"], user=command["user_id"])


def unknown_table_text(typed: str, close: list[str], known: list[str]) -> str:
    shown = blocks.escape(typed[:40])
    if close:
        return f"I don't know a table called `{shown}`. Did you mean " + ", ".join(f"`{c}`" for c in close) + "?"
    listing = ", ".join(f"`{k}`" for k in known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
    return f"I don't know a table called `{shown}`. The catalog has: {listing}."
