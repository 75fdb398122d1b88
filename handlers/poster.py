"""The one way the bot writes messages to Slack, with the one policy for a channel it may not post in.

chat.postMessage answers not_in_channel, channel_not_found (a private channel the bot cannot see) or
is_archived where the bot may not post. Then the message goes to the channel through a response_url
if there is one (the interaction's own; for the worker, the latest click's, which Slack honours for
30 minutes), and `post` returns None: there is no message to update or to thread under. Without a
response_url the message is not posted, the log says what to do (invite the bot), and None is
returned. Any other Slack error is raised to the caller."""
from __future__ import annotations

import logging
from typing import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block
from slack_sdk.webhook import WebhookClient

from .blocks import to_dicts

log = logging.getLogger(__name__)
CANNOT_POST = ("not_in_channel", "channel_not_found", "is_archived")


class Poster:
    def __init__(self, client: WebClient):
        self.client = client

    def post(self, channel: str, text: str, blocks: list[Block] | None = None, *, thread_ts: str | None = None,
             response_url: str | Callable[[], str | None] = "", broadcast: bool = False) -> str | None:
        """The message's ts, or None where the bot may not post (see the module's docstring).
        `response_url` may be a function, asked only when it is needed. `broadcast`: a thread reply
        also shown in the channel (reply_broadcast)."""
        payload = to_dicts(blocks) if blocks else None
        extra = {"reply_broadcast": True} if broadcast and thread_ts else {}
        try:
            return self.client.chat_postMessage(channel=channel, thread_ts=thread_ts or None, text=text,
                                                blocks=payload, **extra)["ts"]
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error not in CANNOT_POST:
                raise
        url = response_url() if callable(response_url) else response_url
        if url and self.respond(url, text, payload, in_channel=True):
            log.info("cannot post in %s (%s); answered through the response_url", channel, error)
        else:
            log.warning("cannot post in %s (%s) and no response_url can carry it: invite the bot there",
                        channel, error)
        return None

    def update(self, channel: str, ts: str, text: str, blocks: list[Block]) -> bool:
        """Draws a posted message again (chat.update, which unlike a response_url does not expire). Best
        effort: what the message shows is kept elsewhere, so a failure is logged, not raised."""
        try:
            self.client.chat_update(channel=channel, ts=ts, text=text, blocks=to_dicts(blocks))
            return True
        except SlackApiError as exc:
            log.warning("chat.update of %s in %s failed: %s", ts, channel, exc.response.get("error"))
            return False

    def direct(self, user: str, text: str) -> bool:
        """A direct message from the app: conversations.open gives the DM channel with `user`
        (https://api.slack.com/methods/conversations.open, scope im:write), then chat.postMessage there.
        Best effort: a notice, never what decides anything."""
        try:
            channel = self.client.conversations_open(users=user)["channel"]["id"]
            self.client.chat_postMessage(channel=channel, text=text)
            return True
        except SlackApiError as exc:
            log.warning("could not send a direct message to %s: %s", user, exc.response.get("error"))
            return False

    def ephemeral(self, response_url: str, text: str, *, channel: str = "", user: str = "") -> bool:
        """Shown only to whoever typed the command or clicked, through the interaction's response_url;
        without one (a form's submission has none), or where it fails, chat.postEphemeral to `user` in
        `channel` (https://api.slack.com/methods/chat.postEphemeral: only a member of the channel sees it)."""
        if response_url and self.respond(response_url, text, None, in_channel=False):
            return True
        if not (channel and user):
            return False
        try:
            self.client.chat_postEphemeral(channel=channel, user=user, text=text)
            return True
        except SlackApiError as exc:
            log.warning("could not tell %s privately in %s: %s", user, channel, exc.response.get("error"))
            return False

    @staticmethod
    def respond(url: str, text: str, payload: list | None, in_channel: bool) -> bool:
        try:
            sent = WebhookClient(url).send(text=text, blocks=payload, replace_original=False,
                                           response_type="in_channel" if in_channel else "ephemeral")
        except OSError as exc:  # the URL's host unreachable: said in the log like any failed post
            log.warning("response_url failed: %s", type(exc).__name__)
            return False
        return sent.status_code == 200
