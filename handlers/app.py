"""Builds the Bolt app: one register(app, bot) per listener kind, one error handler for all."""
from __future__ import annotations

import logging
import uuid
from urllib.parse import urlsplit

from slack_bolt import App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryHandler, RetryState
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot import metrics
from bot.core import SyncBot
from bot.remediation.service import Remediation

from . import actions, commands, events, home, reasons, snooze
from .acks import AcksFirst
from .poster import CANNOT_POST, Poster
from .progress import SlackReporter

log = logging.getLogger(__name__)


class SlackErrorCounter(RetryHandler):
    """Counts every Web API call Slack refuses (`ok: false`) by method and Slack's error code, both from
    a closed set (slack_sdk's method names, Slack's documented errors). A retry handler because slack_sdk
    shows every response to its retry handlers and Bolt copies them into the client it makes for each
    request; it never asks for a retry itself."""

    def can_retry(self, *, state: RetryState, request: HttpRequest, response: HttpResponse | None = None,
                  error: Exception | None = None) -> bool:
        body = response.body if response is not None and isinstance(response.body, dict) else {}
        if body.get("ok") is False:
            method = urlsplit(request.url).path.rsplit("/", 1)[-1]
            metrics.SLACK_ERRORS.labels(method, str(body.get("error") or "unknown")).inc()
        return False

    def _can_retry(self, **_: object) -> bool:
        return False


def web_client(token: str | None, base_url: str) -> WebClient:
    """slack_sdk's own retry handlers: connection resets and 429s with Retry-After; first, the count of
    refused calls."""
    return WebClient(token=token, base_url=base_url, retry_handlers=[
        SlackErrorCounter(),
        ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)])


def build_app(bot: SyncBot, remediation: Remediation, reporter: SlackReporter, *, signing_secret: str,
              client: WebClient, acks: AcksFirst, process_before_response: bool = False) -> App:
    """`acks`: acknowledgements first; a diagnosis's answer waits for the burst's acks before it is
    rendered and sent (acks.after_burst, which the listeners call once the checks are in)."""
    # The client carries the token (and the API base URL); giving Bolt both would make it warn.
    app = App(signing_secret=signing_secret, client=client, process_before_response=process_before_response,
              listener_executor=acks.executor)
    app.use(acks)
    commands.register(app, bot, remediation, reporter, acks.after_burst)
    publisher = home.HomePublisher(bot, remediation.approvals, remediation.approvers)
    actions.register(app, remediation, reporter, publisher)
    reasons.register(app, remediation, reporter)
    snooze.register(app, bot, lambda user: publisher.publish(client, user))
    home.register(app, publisher)
    events.register(app, bot, acks.after_burst)

    @app.error
    def on_error(error, body):
        # Unexpected failures get a reference users can quote; the details stay in the log.
        ref = uuid.uuid4().hex[:8]
        if isinstance(error, SlackApiError) and error.response.get("error") in CANNOT_POST:
            # e.g. an alert's reply in a channel the bot was removed from: nothing to fix in code.
            log.warning("cannot post in that channel (%s, ref %s): invite the bot there", error.response.get("error"), ref)
        else:
            log.error("unhandled error (ref %s): %s", ref, type(error).__name__, exc_info=error)
        url = (body or {}).get("response_url")
        if url:
            Poster(client).ephemeral(url, error_reply(body, ref))

    return app


def error_reply(body: dict, ref: str) -> str:
    """A command never runs a fix (a requested one waits for approval and the worker); a button may
    have queued or approved one before the failure, so the reply says where to find out instead."""
    sorry = f"Sorry, something went wrong on my side (reference `{ref}`)."
    if body.get("type") == "block_actions":
        return (f"{sorry} A fix you pressed may already have run: `syncbot audit` records every fix, and "
                "`/sync-status <table>` shows the state now.")
    return f"{sorry} Nothing in the pipeline was changed."
