"""The tests' Slack: the sandbox's stand-in (syncbot/sandbox/slack.py) with what only tests set, each
answered as Slack answers it: chat.postMessage in a channel the bot is not a member of is refused with
not_in_channel; usergroups.users.list returns the group's members; a token not in `valid_tokens` gets
invalid_auth; `scopes` (the sandbox's field) is what the x-oauth-scopes header reports; users.info
gives each user's `time_zones` entry. views.open (with a trigger_id), views.publish, conversations.open
and chat.postMessage to the DM it returns are the sandbox's, refusing what Slack refuses."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from syncbot.sandbox.slack import SandboxSlack


@dataclass
class FakeSlack(SandboxSlack):
    not_in_channels: set[str] = field(default_factory=set)
    usergroups: dict[str, list[str]] = field(default_factory=dict)
    valid_tokens: set[str] | None = None  # None: every token is good
    time_zones: dict[str, str] = field(default_factory=dict)  # users.info's tz per user (else UTC)

    def authorized(self, token: str) -> bool:
        return self.valid_tokens is None or token in self.valid_tokens

    def refusal(self, method: str, params: dict[str, Any]) -> str | None:
        if method == "chat.postMessage" and params.get("channel") in self.not_in_channels:
            return "not_in_channel"
        return None

    def members(self, usergroup: str) -> list[str]:
        return self.usergroups.get(usergroup, [])

    def time_zone(self, user: str) -> str:
        return self.time_zones.get(user, "UTC")
