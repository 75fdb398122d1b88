"""Snoozes through Bolt with signed requests: the menu on every annotation, the next alert silenced, a
worse table lifting the snooze (annotated in full, saying so), recoveries still noted, End from the
thread; the snooze lives in Redis with its own expiry and in the audit stream."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.models import CheckName, CheckResult, Diagnosis, Section, Status, Verdict, Where, utcnow
from bot.remediation import audit
from bot.snoozes import Snooze, Snoozes
from handlers.snooze import until
from workflow_helpers import alert, annotation_of, blocks_text, in_thread, press_in_alerts, snooze, workflow_harness

BOB = "U0BOB0002"


@pytest.fixture
def wf(make_sandbox, redis, slack):
    return lambda scenario, window=0: workflow_harness(make_sandbox, redis, slack, scenario, window)


def trail(h):
    return [(e.event, e.user) for e in reversed(audit.read(h.redis, "orders")) if e.action == "snooze"]


def test_every_annotation_has_the_menu_and_a_snooze_silences_the_next_alert(wf):
    h = wf("pipe-paused")
    first = alert(h)
    card = annotation_of(h, first)
    menu = next(e for b in card.params["blocks"] if b["type"] == "actions" for e in b["elements"]
                if e["action_id"] == "syncbot.snooze")
    assert [o["value"] for o in menu["options"]] == ["1h|orders", "4h|orders", "tomorrow|orders"]
    snooze(h, card, "4h", BOB)
    [said] = in_thread(h, first)[-1:]
    assert f"snoozed by <@{BOB}> until <!date^" in blocks_text(said.params)
    assert 4 * 3600 - 60 < h.redis.ttl("syncbot:snooze:orders") <= 4 * 3600 + 1  # expires by itself
    assert trail(h) == [("snoozed", BOB)]
    posted = len(h.slack.of("chat.postMessage"))
    second = alert(h)
    assert h.slack.of("chat.postMessage")[posted:] == [] and in_thread(h, second) == []


def test_a_worse_table_lifts_the_snooze_and_is_annotated_in_full(wf):
    h = wf("pipe-paused")
    first = alert(h)
    snooze(h, annotation_of(h, first), "1h", BOB)
    # A check that was not failing fails now: DMS stops the task.
    h.sandbox.dms_client.stop_replication_task(ReplicationTaskArn=h.sandbox.task_arn)
    later = alert(h)
    lifted = annotation_of(h, later)
    text = blocks_text(lifted.params)
    assert f"snoozed by <@{BOB}> until <!date^" in text and ", lifted: now *" in text
    assert h.redis.get("syncbot:snooze:orders") is None
    assert trail(h) == [("snoozed", BOB), ("snooze lifted", "syncbot")]


def test_recoveries_still_get_their_line_while_snoozed(wf):
    h = wf("pipe-paused")
    first = alert(h)
    snooze(h, annotation_of(h, first), "1h", BOB)
    posted = len(h.slack.of("chat.postMessage"))
    alert(h, "Resolved: PUBLIC.ORDERS is fresh again")
    [note] = h.slack.of("chat.postMessage")[posted:]
    assert note.params["text"].startswith("Recovery reported") and note.params["thread_ts"] == first


def test_end_from_the_thread(wf):
    h = wf("pipe-paused")
    first = alert(h)
    snooze(h, annotation_of(h, first), "1h", BOB)
    said = in_thread(h, first)[-1]
    end = said.params["blocks"][0]["accessory"]
    assert end["action_id"] == "syncbot.unsnooze" and end["value"] == "orders"
    press_in_alerts(h, end, "U0ALICE01", said)
    assert h.redis.get("syncbot:snooze:orders") is None
    assert "ended the snooze of *orders*" in in_thread(h, first)[-1].params["text"]
    assert trail(h)[-1] == ("snooze ended", "U0ALICE01")
    assert annotation_of(h, alert(h))  # annotated again


def test_until_tomorrow_nine_in_the_clickers_time_zone(wf, slack):
    h = wf("pipe-paused")
    slack.time_zones[BOB] = "Asia/Tokyo"
    first = alert(h)
    snooze(h, annotation_of(h, first), "tomorrow", BOB)
    got = Snoozes(h.redis).get("orders")
    tokyo = datetime.now(ZoneInfo("Asia/Tokyo"))
    expected = (tokyo + timedelta(days=1)).replace(hour=9, minute=0, second=0, microsecond=0)
    assert got.until == expected.timestamp() and got.by == BOB
    assert until("tomorrow", "Not/AZone", 0) == datetime(1970, 1, 2, 9, tzinfo=ZoneInfo("UTC")).timestamp()


def _diag(section, failing=()):
    checks = tuple(CheckResult(name, Status.FAILING, "x") for name in failing)
    return Diagnosis("orders", "public.orders", checks, Verdict(section, Where.UPSTREAM, "x"), (), utcnow())


@pytest.mark.parametrize("snoozed, failing, now, now_failing, worse", [
    (Section.LAGGING, (CheckName.FRESHNESS,), Section.STALLED, (CheckName.FRESHNESS,), True),  # a worse verdict
    (Section.LAGGING, (CheckName.FRESHNESS,), Section.LAGGING, (CheckName.FRESHNESS, CheckName.S3), True),  # new check
    (Section.STALLED, (CheckName.S3, CheckName.FRESHNESS), Section.LAGGING, (CheckName.FRESHNESS,), False),
    (Section.LAGGING, (CheckName.FRESHNESS,), Section.HEALTHY, (), False),
])
def test_what_lifts_a_snooze(snoozed, failing, now, now_failing, worse):
    held = Snooze("orders", BOB, 0.0, snoozed, tuple(c.value for c in failing))
    assert held.worse(_diag(now, now_failing)) is worse
