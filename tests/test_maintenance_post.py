"""The maintenance report in Slack and on its schedule: /sync-status maintenance through Bolt's request
path, the scheduled post through a real Redis shared by several replicas, and the CLI."""
import json
import logging
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import redis as redis_lib
from redis.backoff import NoBackoff
from redis.retry import Retry

from bot.catalog import Maintenance
from bot.services import assemble
from bot.gateways import Gateways
from bot.gateways.aurora import AuroraGateway
from bot.maintenance import Finding, MaintenanceReport, Topic, collect, due_period, post_due_maintenance
from bot.models import Status
from handlers.app import web_client
from handlers.blocks import MAX_BLOCKS, SECTION_LIMIT
from handlers.commands import parse
from handlers.maintenance import post_due, report_blocks
from syncbot.cli import main as cli_main
from syncbot.sandbox.slack import bolt_request, slash_command_body

MONDAY_8 = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # a Monday
WEEKLY = Maintenance(channel="C0MAINT01", schedule="0 8 * * MON")
REDIS_URL = os.environ.get("SYNCBOT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")  # as conftest's


# -- When a report is due ---------------------------------------------------------------------------

@pytest.mark.parametrize("now, due", [
    (MONDAY_8, MONDAY_8),
    (MONDAY_8 + timedelta(minutes=59), MONDAY_8),
    (MONDAY_8 + timedelta(hours=1), None),  # more than an hour late: wait for next Monday
    (MONDAY_8 - timedelta(minutes=1), None),
    (MONDAY_8 + timedelta(days=3), None),
])
def test_weekly_report_is_due_in_the_hour_after_it_fires(now, due):
    assert due_period("0 8 * * MON", now) == due


def test_hourly_report_is_always_due_for_the_current_hour():
    assert due_period("@hourly", MONDAY_8 + timedelta(minutes=37)) == MONDAY_8
    assert due_period("0 */2 * * *", MONDAY_8 + timedelta(minutes=59)) == MONDAY_8
    assert due_period("0 */2 * * *", MONDAY_8 + timedelta(minutes=61)) is None  # an hour's grace at most


# -- Posting once per period, whatever the number of replicas ---------------------------------------

@pytest.fixture
def replicas(make_sandbox, redis):
    """Bots sharing one sandbox and one Redis server, each with its own connection, as replicas do."""
    sandbox = make_sandbox("stalled", real_aurora=False)
    catalog = replace(sandbox.catalog, maintenance=WEEKLY)
    made = []

    def make(n, catalog=catalog):
        for _ in range(n):
            made.append(assemble(catalog, sandbox.gateways, redis_lib.Redis.from_url(REDIS_URL)))
        return made[-n:]

    yield make
    for bot in made:
        bot.redis.close()


def test_several_replicas_post_once_per_period(replicas, slack):
    bots = replicas(4)
    client = web_client("xoxb-test", slack.api_url)
    with ThreadPoolExecutor(max_workers=4) as pool:
        posted = list(pool.map(lambda bot: post_due(bot, client, MONDAY_8 + timedelta(minutes=1)), bots))
    assert sum(r is not None for r in posted) == 1
    [message] = slack.of("chat.postMessage")
    assert message.params["channel"] == "C0MAINT01"
    assert message.params["blocks"][0]["text"]["text"] == "Maintenance: 2 of 6 checks need attention"
    # Later in the same period nobody posts again; the next Monday someone does.
    assert all(post_due(bot, client, MONDAY_8 + timedelta(minutes=30)) is None for bot in bots)
    assert post_due(bots[2], client, MONDAY_8 + timedelta(days=7, minutes=2)) is not None
    assert len(slack.of("chat.postMessage")) == 2


def test_a_failed_post_gives_the_period_back(replicas, slack):
    [bot] = replicas(1)
    client = web_client("xoxb-test", slack.api_url)
    slack.not_in_channels.add("C0MAINT01")
    assert post_due(bot, client, MONDAY_8 + timedelta(minutes=1)) is None  # not_in_channel: logged, not raised
    assert bot.redis.keys("syncbot:maintenance:*") == []
    slack.not_in_channels.clear()  # someone invites the bot; the next minute's call posts
    assert post_due(bot, client, MONDAY_8 + timedelta(minutes=2)) is not None
    assert len([m for m in slack.of("chat.postMessage") if m.ts in slack.messages]) == 1


def test_outside_the_schedule_or_without_one_nothing_happens(replicas, redis):
    [bot] = replicas(1)
    [unscheduled] = replicas(1, catalog=replace(bot.catalog, maintenance=Maintenance()))
    calls = []
    assert post_due_maintenance(bot, lambda *a: calls.append(a), MONDAY_8 + timedelta(days=1)) is None
    assert post_due_maintenance(unscheduled, lambda *a: calls.append(a), MONDAY_8) is None
    assert calls == [] and redis.keys("*") == []


def test_without_redis_nothing_is_posted(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    catalog = replace(sandbox.catalog, maintenance=WEEKLY)
    bot = assemble(catalog, sandbox.gateways, redis_lib.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)))
    calls = []
    with pytest.raises(redis_lib.ConnectionError):
        post_due_maintenance(bot, lambda *a: calls.append(a), MONDAY_8)
    assert calls == []


# -- The whole report, over the sandbox -------------------------------------------------------------------------------

def test_report_over_the_sandbox_and_a_real_database(make_sandbox):
    sandbox = make_sandbox("stalled")  # real PostgreSQL for Aurora (no logical slot); a hot instance
    report = collect(sandbox.gateways, sandbox.catalog)
    by = {(f.topic, f.table or f.subject): f for f in report.findings}
    assert [f.table for f in report.per_table] == ["orders", "customers", "payments"]
    assert all(f.status is Status.OK for f in report.per_table)  # freshly created tables: nothing dead
    assert by[(Topic.WAL, "logical replication slots")].status is Status.WARNING
    assert by[(Topic.INSTANCE, "dms-prod")].status is Status.FAILING
    assert by[(Topic.S3, "s3://acme-cdc/dms/")].status is Status.OK
    assert report.overall is Status.FAILING and report.headline() == "Maintenance: 2 of 6 checks need attention"
    assert [f.topic for f in report.needing_attention()] == [Topic.INSTANCE, Topic.WAL]  # worst first


def test_a_backend_that_is_down_costs_only_its_own_findings(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    down = AuroraGateway("postgresql://syncbot:s3cret@127.0.0.1:1/aurora", connect_timeout=1)
    gateways = Gateways(dms=sandbox.gateways.dms, s3=sandbox.gateways.s3, snowflake=sandbox.snowflake, aurora=down)
    report = collect(gateways, sandbox.catalog)
    aurora = [f for f in report.findings if f.topic in (Topic.VACUUM, Topic.WAL)]
    assert len(aurora) == 4 and all(f.status is Status.UNKNOWN and "Aurora:" in f.summary for f in aurora)
    assert all("s3cret" not in f.summary for f in aurora)
    others = [f for f in report.findings if f.topic in (Topic.INSTANCE, Topic.S3)]
    assert [f.status for f in others] == [Status.OK, Status.OK]


# -- /sync-status maintenance through Bolt ----------------------------------------------------------

def command(h, text, channel="C0INCIDNT"):
    body = slash_command_body(text, "U0ALICE01", channel, h.slack.response_url())
    response = h.app.dispatch(bolt_request(body, h.secret))
    return response, json.loads(response.body)


def test_parse_knows_maintenance():
    assert parse("maintenance").kind == "maintenance" and parse(" Maintenance ").kind == "maintenance"
    assert parse("maintenance orders").kind == "malformed"


def test_sync_status_maintenance_posts_the_report(harness):
    h = harness("dms-failed")
    response, ack = command(h, "maintenance")
    assert response.status == 200 and ack["response_type"] == "ephemeral" and "WAL retention" in ack["text"]
    [message] = h.slack.of("chat.postMessage")
    assert message.params["channel"] == "C0INCIDNT"
    assert message.params["text"] == message.params["blocks"][0]["text"]["text"]
    sections = [b["text"]["text"] for b in message.params["blocks"] if b["type"] == "section"]
    instance = next(s for s in sections if "*Replication instance*" in s)
    assert ":red_circle:" in instance and "*Fix:* Scale the replication instance" in instance
    assert "limit the task's scope" in instance
    context = json.dumps([b for b in message.params["blocks"] if b["type"] == "context"])
    assert "OK" in context and "*Vacuum:*" in context and "/sync-status maintenance" in context


def test_help_mentions_maintenance(harness):
    _, ack = command(harness(), "help")
    assert "/sync-status maintenance" in ack["text"]


def test_big_report_stays_within_slack_limits():
    finding = Finding(Topic.VACUUM, "public.t", Status.WARNING, "x" * 400, "vacuum it", "VACUUM (ANALYZE) t;\n" * 20,
                      ("detail",) * 10, table="t")
    report = MaintenanceReport(tuple(replace(finding, table=f"t{i}") for i in range(300))
                               + tuple(replace(finding, status=Status.OK, table=f"ok{i}") for i in range(300)),
                               MONDAY_8)
    blocks = [b.to_dict() for b in report_blocks(report)]
    assert len(blocks) <= MAX_BLOCKS
    assert all(len(b["text"]["text"]) <= SECTION_LIMIT for b in blocks if b["type"] == "section")
    notes = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert any("more findings need attention" in n for n in notes)
    assert sum(len(json.dumps(b)) for b in blocks) < 20_000


def test_what_slack_shows_is_escaped():
    hostile = Finding(Topic.S3, "s3://b/", Status.WARNING, "rule <!channel> & co", "see <https://evil>")
    text = json.dumps([b.to_dict() for b in report_blocks(MaintenanceReport((hostile,), MONDAY_8))])
    assert "<!channel>" not in text and "<https://evil>" not in text and "&lt;!channel&gt;" in text


# -- The CLI ----------------------------------------------------------------------------------------

def run(*args):
    return subprocess.run([sys.executable, "-m", "syncbot.cli", *args], capture_output=True, text=True, timeout=120)


def test_cli_maintenance_report_and_exit_status():
    result = run("maintenance", "--sandbox", "stalled")
    assert result.returncode == 1, result.stderr
    assert result.stdout.startswith("Maintenance: 2 of 6 checks need attention")
    assert "[FAIL] Replication instance · dms-prod: CPU hourly average up to 94%" in result.stdout
    assert "[WARN] WAL retention · dms_slot_aurora_snowflake_cdc" in result.stdout



def test_cli_maintenance_json(capsys):
    root = logging.getLogger()
    level = root.level
    try:  # in-process: one interpreter start-up per module is enough
        assert cli_main(["maintenance", "--json", "--sandbox", "healthy"]) == 0
    finally:
        root.setLevel(level)  # the CLI quietens the root logger for itself
    data = json.loads(capsys.readouterr().out)
    assert data["overall"] == "ok" and len(data["findings"]) == 6
    assert {f["topic"] for f in data["findings"]} == {"Vacuum", "WAL retention", "Replication instance", "S3 clean-up"}

