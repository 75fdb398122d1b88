"""Every action id and block id the bot's messages carry, so handlers and messages cannot drift."""
from __future__ import annotations

import re
from enum import StrEnum

from bot.models import ActionKind


class BlockId(StrEnum):
    VERDICT = "syncbot.verdict"
    FIXES = "syncbot.fixes"


FIX_PREFIX = "syncbot.fix."
# One listener for every fix button: the action id names the kind, the value is the opaque offer id.
FIX_ACTION = re.compile(r"^syncbot\.fix\.(" + "|".join(k.value for k in ActionKind) + r")$")


def fix_action_id(kind: ActionKind) -> str:
    return FIX_PREFIX + kind.value


COMMAND = "/sync-status"



class ActionId(StrEnum):
    """The action ids of the bot's buttons and menus other than the fix buttons (FIX_ACTION)."""

    APPROVE = "syncbot.approve"
    REJECT = "syncbot.reject"
    CANCEL = "syncbot.cancel"
    # The diagnosis's overflow menu: the fixes offered for any table whatever the verdict (the re-sync).
    MORE = "syncbot.more"
    SNOOZE = "syncbot.snooze"  # an alert annotation's Snooze menu: the value is the length
    UNSNOOZE = "syncbot.unsnooze"  # End a snooze (thread or App Home): the value is the table


class ViewId(StrEnum):
    """callback_ids of the bot's forms (views), and the block and action ids of their inputs."""

    REASON = "syncbot.reason"  # why a two-person fix should run
    REASON_BLOCK = "syncbot.reason.block"
    REASON_INPUT = "syncbot.reason.input"
