"""The Snooze menu under every alert annotation, and End: anyone in the channel may snooze a table's
alerts for 1 hour, 4 hours, or until 09:00 tomorrow in their own time zone (users.info's `tz`,
https://api.slack.com/methods/users.info, scope users:read). The core keeps the snooze
(bot.snoozes); this draws the menu, says in the thread who snoozed and until when, and ends it."""
from __future__ import annotations

import logging
import time
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from slack_bolt import App
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock, Block, ButtonElement, MarkdownTextObject, Option, SectionBlock, StaticSelectElement,
)

from bot.core import SyncBot
from bot.snoozes import Snooze, Snoozes

from .blocks import escape
from .ids import ActionId
from .poster import Poster

log = logging.getLogger(__name__)
LENGTHS = {"1h": "1 hour", "4h": "4 hours", "tomorrow": "until tomorrow 09:00"}


def snooze_menu(table: str) -> Block:
    """The option values carry the table's name (at most 150 characters; names are at most 63): a snooze
    changes nothing but which alerts are annotated, so anyone in the channel may choose one."""
    return ActionsBlock(block_id=f"syncbot.snooze.{table}"[:255], elements=[StaticSelectElement(
        action_id=ActionId.SNOOZE, placeholder="Snooze alerts…",
        options=[Option(text=label, value=f"{length}|{table}") for length, label in LENGTHS.items()])])


def end_button(table: str) -> ButtonElement:
    return ButtonElement(text="End snooze", action_id=ActionId.UNSNOOZE, value=table)


def until(length: str, tz: str, now: float | None = None) -> float | None:
    now = time.time() if now is None else now
    if length == "1h":
        return now + 3600
    if length == "4h":
        return now + 4 * 3600
    if length != "tomorrow":
        return None
    try:
        zone = ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    local = datetime.fromtimestamp(now, zone)
    return (local + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0).timestamp()


def when(epoch: float) -> str:
    """Slack draws the date in each reader's own time zone (https://api.slack.com/reference/surfaces/formatting#date-formatting);
    the fallback is UTC."""
    fallback = datetime.fromtimestamp(epoch, timezone.utc).strftime("%a %H:%M UTC")
    return f"<!date^{int(epoch)}^{{date_short_pretty}} {{time}}|{fallback}>"


def snoozed_line(snooze: Snooze) -> str:
    return f"snoozed by <@{snooze.by}> until {when(snooze.until)}"


def _tz(client, user: str) -> str:
    try:
        return client.users_info(user=user)["user"].get("tz") or "UTC"
    except SlackApiError as exc:
        log.info("no time zone for %s (%s): UTC", user, exc.response.get("error"))
        return "UTC"


def register(app: App, bot: SyncBot, on_change=lambda user: None) -> None:
    """`on_change(user)`: called after a snooze ends from the App Home, to draw it again."""
    snoozes = Snoozes(bot.redis)

    @app.action(ActionId.SNOOZE)
    def snooze_chosen(ack, action, body, client):
        ack()
        length, _, name = (action.get("selected_option") or {}).get("value", "").partition("|")
        spec, user = bot.find(name), body["user"]["id"]
        end = until(length, _tz(client, user)) if spec is not None else None
        if end is None:
            return
        snooze = snoozes.snooze(spec.name, user, end)
        channel = (body.get("channel") or {}).get("id", "")
        container = body.get("container", {})
        thread = container.get("thread_ts") or container.get("message_ts")
        if channel:
            Poster(client).post(channel, f"Alerts about {spec.name} snoozed", [_said(
                f":zzz: Alerts about *{escape(spec.name)}* {snoozed_line(snooze)}: they get no annotation unless "
                "it gets worse (a new failing check or a worse verdict).", spec.name)], thread_ts=thread,
                response_url=body.get("response_url", ""))

    @app.action(ActionId.UNSNOOZE)
    def snooze_ended(ack, action, body, client):
        ack()
        spec, user = bot.find(action.get("value", "")), body["user"]["id"]
        if spec is None or not snoozes.end(spec.name, user):
            return
        channel = (body.get("channel") or {}).get("id", "")
        container = body.get("container", {})
        if channel:
            Poster(client).post(channel, f":bell: <@{user}> ended the snooze of *{escape(spec.name)}*: its alerts are "
                                         "annotated again.", thread_ts=container.get("thread_ts")
                                or container.get("message_ts"), response_url=body.get("response_url", ""))
        else:
            on_change(user)


def _said(text: str, table: str) -> Block:
    return SectionBlock(text=MarkdownTextObject(text=text), accessory=end_button(table))
