"""Fix buttons. A click is honoured only for an offer id the bot itself stored for that action."""
from __future__ import annotations

from slack_bolt import App

from bot.core import SyncBot
from bot.models import ACTION_LABELS

from .ids import FIX_ACTION, FIX_PREFIX

STALE = ("That button is no longer valid (it expired or was not made by me). "
         "Run `/sync-status <table>` again for fresh buttons.")


def register(app: App, bot: SyncBot) -> None:
    @app.action(FIX_ACTION)
    def fix_clicked(ack, action, respond):
        ack()
        offer = bot.offers.get(action.get("value", ""))
        if offer is None or FIX_PREFIX + offer.action.value != action.get("action_id"):
            respond(response_type="ephemeral", replace_original=False, text=STALE)
            return
        respond(response_type="ephemeral", replace_original=False,
                text=f"*{ACTION_LABELS[offer.action]}* for `{offer.table}` is coming soon: "
                     "follow the runbook section named above by hand for now.")
