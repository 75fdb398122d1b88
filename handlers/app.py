"""Builds the Bolt app: one register(app, bot) per listener kind, one error handler for all."""
from __future__ import annotations

import logging
import uuid

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.core import SyncBot

from . import actions, commands

log = logging.getLogger(__name__)


def web_client(token: str | None, base_url: str) -> WebClient:
    """slack_sdk's own retry handlers: connection resets and 429s with Retry-After."""
    return WebClient(token=token, base_url=base_url, retry_handlers=[
        ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)])


def build_app(bot: SyncBot, *, token: str | None, signing_secret: str, client: WebClient | None = None,
              process_before_response: bool = False) -> App:
    # The client carries the token (and the API base URL); giving Bolt both would make it warn.
    app = App(signing_secret=signing_secret, client=client or web_client(token, "https://slack.com/api/"),
              process_before_response=process_before_response)
    commands.register(app, bot)
    actions.register(app, bot)

    @app.error
    def on_error(error, body, logger):
        # Unexpected failures get a reference users can quote; the details stay in the log.
        ref = uuid.uuid4().hex[:8]
        log.error("unhandled error (ref %s): %s", ref, type(error).__name__, exc_info=error)
        return None

    return app
