"""Posts the latency picture into a diagnosis's thread with files_upload_v2, after the diagnosis itself
is posted: the picture never delays the answer, and failing to get or upload it costs only the picture."""
from __future__ import annotations

import logging

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.catalog import TableSpec
from bot.core import SyncBot

log = logging.getLogger(__name__)


def post_latency_picture(client: WebClient, bot: SyncBot, spec: TableSpec, channel: str, thread_ts: str | None) -> None:
    if not thread_ts:  # answered through response_url: no message to thread under
        return
    try:
        picture = bot.latency_picture(spec)
        if picture is None:
            return
        client.files_upload_v2(channel=channel, thread_ts=thread_ts, content=picture.png,
                               filename=picture.filename, title=picture.title, alt_txt=picture.title)
    except Exception as exc:  # noqa: BLE001 - the diagnosis is posted; only the picture is lost
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        log.warning("latency picture for %s not posted: %s", spec.name, error)
