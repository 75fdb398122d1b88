"""The scheduled maintenance post: `[maintenance] schedule` (cron, UTC) says when, and a Redis key per
period, set only if absent (SET NX), makes it happen once per period however many replicas' workers ask;
a post that fails gives the period back."""
from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Any, Callable

from croniter import croniter

from ..models import utcnow
from .collect import maintenance_report
from .report import MaintenanceReport

log = logging.getLogger(__name__)

# A report more than this late (the workers were down at the time) waits for the next period.
GRACE = timedelta(hours=1)
_KEY = "syncbot:maintenance:posted:{channel}:{period}"

# Compare-and-delete: give the period back only if its key still holds our token.
# KEYS[1] the period's key. ARGV[1] the token it was set with.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


def period_of(schedule: str, now: datetime) -> tuple[datetime, datetime]:
    """The schedule's period `now` falls in: (the latest fire time <= now, the next fire time)."""
    # croniter's get_prev is strictly earlier than its base, so a fire time is its own period's start.
    start = croniter(schedule, now.replace(microsecond=0) + timedelta(seconds=1)).get_prev(datetime)
    return start, croniter(schedule, start).get_next(datetime)


def due_period(schedule: str, now: datetime, grace: timedelta = GRACE) -> datetime | None:
    """The start of the period whose report is due at `now`, or None when none is (more than `grace`,
    or the whole period if shorter, has passed since the schedule fired)."""
    start, end = period_of(schedule, now)
    return start if now - start < min(grace, end - start) else None


def post_due_maintenance(bot: Any, post: Callable[[str, MaintenanceReport], str | None],
                         now: datetime | None = None, grace: timedelta = GRACE) -> MaintenanceReport | None:
    """Posts the maintenance report to `[maintenance] channel` if the schedule has fired and no
    replica has posted for this period yet. Returns the report posted, else None.

    `bot` is the SyncBot facade; `post(channel, report)` renders and sends it (handlers.maintenance
    .post_report does, for Slack). Call it every minute or so from each worker. A failed post gives
    the period back so the next call retries; Redis being down raises (nothing is posted)."""
    config = bot.catalog.maintenance
    now = now or utcnow()
    if not config.scheduled:
        return None
    period = due_period(config.schedule, now, grace)
    if period is None:
        return None
    _, end = period_of(config.schedule, now)
    key = _KEY.format(channel=config.channel, period=period.strftime("%Y%m%dT%H%M%SZ"))
    token = secrets.token_hex(8)
    ttl = int((end - period + grace).total_seconds()) + 3600
    if not bot.redis.set(key, token, nx=True, ex=ttl):
        return None  # another worker has this period
    try:
        report = maintenance_report(bot, now)
        posted = post(config.channel, report)
    except Exception:
        _give_back(bot, key, token)
        raise
    if posted is None:  # the bot may not post there (the log says so): the next tick tries again
        _give_back(bot, key, token)
        return None
    log.info("maintenance report for the period from %s posted to %s", period.isoformat(), config.channel)
    return report


def _give_back(bot: Any, key: str, token: str) -> None:
    bot.redis.register_script(_RELEASE)(keys=[key], args=[token])
