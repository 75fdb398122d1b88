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

APPROVE_ACTION = "syncbot.approve"
REJECT_ACTION = "syncbot.reject"
CANCEL_ACTION = "syncbot.cancel"
# The diagnosis's overflow menu: actions for any table whatever the verdict (today: Re-sync table).
MORE_ACTION = "syncbot.more"
