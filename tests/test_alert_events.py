"""Alert threads through Bolt's own request path: recorded message events (tests/payloads/) wrapped in
signed Events API deliveries, a real Redis shared by every "replica", and the sandbox pipeline behind
the diagnosis. What reached Slack is read back from the local Web API stand-in."""
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import pytest
import redis as redis_lib
from conftest import REDIS_URL, Harness

from bot.alert_threads import ALIASES_TTL_S, TaskAliases
from bot.alerts import read
from bot.catalog import Alerts
from bot.gateways.dms import DmsGateway
from handlers.alert_posts import post_of
from syncbot.sandbox.seams import backend
from syncbot.sandbox.slack import bolt_request, event_callback_body, event_request, signed_headers

PAYLOADS = Path(__file__).parent / "payloads"
RECORDED_RESOURCE_ID = "Q7XKZ3VBNJ2M4LPRT6WYHC5DSA"
CHANNEL = "C0ALERTS1"


def recorded(name, h, **changes):
    """A recorded event, its DMS resource id replaced by the sandbox task's (random per sandbox)."""
    text = (PAYLOADS / f"{name}.json").read_text().replace(RECORDED_RESOURCE_ID, h.sandbox.task_arn.rsplit(":", 1)[-1])
    return {**json.loads(text), **changes}


def deliver(h, event, retry_num=None):
    return h.app.dispatch(event_request(event_callback_body(event), h.secret, retry_num=retry_num))


def replies(h, ts):
    return [c for c in h.slack.of("chat.postMessage") if c.params.get("thread_ts") == ts]


def reads(h):
    """Calls to Snowflake, Aurora and DMS (with its CloudWatch and Logs) so far."""
    return (backend(h.sandbox.calls, "snowflake"), backend(h.sandbox.calls, "aurora"),
            backend(h.sandbox.calls, "dms", "cloudwatch", "logs"))


def headers(messages):
    return [m.params["blocks"][0]["text"]["text"] for m in messages if m.params.get("blocks")]


def buttons(message):
    return [e for b in message.params["blocks"] if b["type"] == "actions" for e in b["elements"] if e["type"] == "button"]


def replica(h):
    """A second app on the same pipeline and the same Redis, as another replica of the deployment."""
    return Harness(h.sandbox, redis_lib.Redis.from_url(REDIS_URL), h.slack)


def test_alarm_for_the_task_gets_each_tables_diagnosis_in_its_thread(harness):
    h = harness("stalled")
    alarm = recorded("chatbot_cloudwatch_alarm", h)
    response = deliver(h, alarm)
    assert response.status == 200
    posted = h.slack.of("chat.postMessage")
    assert posted and posted == replies(h, alarm["ts"])
    assert all(m.params["channel"] == CHANNEL for m in posted)
    # the CloudWatch alarm names the task by resource id only: every table of the task, worst first
    assert headers(posted) == ["orders: DMS Task Stalled", "customers: Healthy", "payments: Healthy"]
    assert posted[0].params["text"].startswith("orders: DMS Task Stalled")
    fixes = buttons(posted[0])
    assert "syncbot.fix.restart_task" in [b["action_id"] for b in fixes]
    for button in fixes:  # the same offers /sync-status makes, bound to the alert channel
        offer = h.bot.offers.get(button["value"])
        assert offer.table == "orders" and offer.channel == CHANNEL
    assert not buttons(posted[1]) and not buttons(posted[2])


@pytest.mark.parametrize("name, table, header", [
    ("sns_email_alarm", "orders", "orders: Schema Mismatch"),
    ("snowpipe_error_email", "orders", "orders: Schema Mismatch"),
    ("pagerduty_triggered", "payments", "payments: Healthy"),
])
def test_alerts_from_other_tools_are_annotated(harness, name, table, header):
    h = harness("schema-mismatch")
    alert = recorded(name, h)
    assert deliver(h, alert).status == 200
    assert headers(replies(h, alert["ts"])) == [header]


def test_slack_retries_are_annotated_once(harness):
    h = harness("pipe-paused")
    alert = recorded("snowflake_alert_email", h)
    for retry in (None, 1, 2, 3):
        assert deliver(h, alert, retry_num=retry).status == 200
    [annotation] = h.slack.of("chat.postMessage")
    assert headers([annotation]) == ["orders: Sync Lagging / Data Missing"]


def test_replicas_receiving_the_same_event_at_once_annotate_it_once(harness):
    h = harness("pipe-paused")
    other = replica(h)
    alert = recorded("snowflake_alert_email", h)
    body = event_callback_body(alert)
    apps = [(h.app, h.secret), (other.app, other.secret)]
    # first deliveries and retries (X-Slack-Retry-Num 1..5), alternating between the replicas
    deliveries = [(apps[n % 2][0], event_request(body, apps[n % 2][1], retry_num=n // 2 or None)) for n in range(12)]
    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(lambda d: d[0].dispatch(d[1]).status, deliveries))
    assert statuses == [200] * 12
    [annotation] = h.slack.of("chat.postMessage")
    assert headers([annotation]) == ["orders: Sync Lagging / Data Missing"]


def test_a_burst_gets_one_diagnosis_and_one_line_links_to_it(harness):
    h = harness("pipe-paused")
    other = replica(h)
    burst = [recorded("snowflake_alert_email", h, ts=f"1767226200.00060{i}") for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(lambda pair: pair[0].app.dispatch(event_request(event_callback_body(pair[1]), pair[0].secret)),
                      zip([h, other, h, other], burst)))
    posted = h.slack.of("chat.postMessage")
    diagnosed = [m for m in posted if m.params.get("blocks")]
    assert headers(diagnosed) == ["orders: Sync Lagging / Data Missing"]
    first = diagnosed[0].params["thread_ts"]
    link = f"https://sandbox.slack.com/archives/{CHANNEL}/p{first.replace('.', '')}"
    lines = [m for m in posted if not m.params.get("blocks")]
    assert sorted(m.params["thread_ts"] for m in lines) == sorted(a["ts"] for a in burst if a["ts"] != first)
    for line in lines:
        assert f"<{link}|the first alert>" in line.params["text"] and "*orders*" in line.params["text"]
        assert "within 15 min" in line.params["text"] and "\n" not in line.params["text"]
    # the window is the catalog's suppression_minutes (default 15), kept by Redis
    assert 14 * 60 < h.redis.ttl("syncbot:alert:burst:orders") <= 15 * 60


def test_a_task_alarm_after_a_table_alert_diagnoses_only_the_others(harness):
    h = harness("stalled")
    email = recorded("sns_email_alarm", h)
    deliver(h, email)
    alarm = recorded("chatbot_cloudwatch_alarm", h)
    deliver(h, alarm)
    assert headers(replies(h, email["ts"])) == ["orders: DMS Task Stalled"]
    in_alarm = replies(h, alarm["ts"])
    assert headers(in_alarm) == ["customers: Healthy", "payments: Healthy"]
    [line] = [m for m in in_alarm if not m.params.get("blocks")]
    assert "*orders*" in line.params["text"] and f"p{email['ts'].replace('.', '')}" in line.params["text"]


def test_without_a_suppression_window_every_alert_is_diagnosed(make_sandbox, redis, slack):
    sandbox = make_sandbox("pipe-paused")
    sandbox.catalog = replace(sandbox.catalog, alerts=Alerts((CHANNEL,), suppression_minutes=0))
    h = Harness(sandbox, redis, slack)
    for i in range(2):
        deliver(h, recorded("pagerduty_triggered", h, ts=f"1767226400.00090{i}"))
    assert headers(h.slack.of("chat.postMessage")) == ["payments: Healthy", "payments: Healthy"]


def test_recovery_adds_a_fresh_verdict_line_in_the_first_alerts_thread(harness):
    h = harness("stalled")
    alarm = recorded("chatbot_cloudwatch_alarm", h)
    deliver(h, alarm)
    before = len(h.slack.of("chat.postMessage"))
    ok = recorded("chatbot_cloudwatch_ok", h)
    assert deliver(h, ok).status == 200
    assert deliver(h, ok, retry_num=1).status == 200
    [note] = h.slack.of("chat.postMessage")[before:]
    assert note.params["thread_ts"] == alarm["ts"] and note.params["channel"] == CHANNEL
    text = note.params["text"]
    assert text.startswith("Recovery reported. Current state: ")
    assert ":red_circle: *orders* — DMS Task Stalled — upstream (Aurora/DMS)" in text
    assert ":large_green_circle: *customers* — Healthy" in text and "\n" not in text
    assert not replies(h, ok["ts"])


def test_recovery_without_an_earlier_alert_posts_nothing(harness):
    h = harness()
    assert deliver(h, recorded("dashboard_freshness_resolved", h)).status == 200
    assert not h.slack.of("chat.postMessage")


@pytest.mark.parametrize("name, changes", [
    ("not_alert_human_chatter", {}),
    ("not_alert_thread_reply", {}),
    ("not_alert_edit", {}),
    ("not_alert_deletion", {}),
    ("not_alert_deploy_bot", {}),
    ("not_alert_unknown_table", {}),
    ("not_alert_own_post", {}),                          # dropped by Bolt's IgnoringSelfEvents
    ("chatbot_cloudwatch_alarm", {"channel": "C0INCIDNT"}),  # an alert outside the catalog's alert channels
    ("chatbot_cloudwatch_alarm", {"subtype": "channel_join"}),
    ("not_alert_thread_broadcast", {}),                  # a follow-up in the alert's thread, also sent to the channel
    ("pagerduty_triggered", {"thread_ts": "1767226400.000100"}),  # an app's reply in a thread
    ("not_alert_dms_task_modified", {}),                 # a DMS event that is neither failure nor recovery
])
def test_non_alerts_are_acknowledged_and_ignored(harness, name, changes):
    h = harness("stalled")
    calls = reads(h)
    response = deliver(h, recorded(name, h, **changes))
    assert response.status == 200  # anything else, and Slack would retry it
    assert not h.slack.of("chat.postMessage")
    assert not h.redis.keys("syncbot:alert:*")
    # nothing diagnosed; at most DMS was asked once for the task's resource id and once for its instance
    # (an alarm naming no table)
    after = reads(h)
    assert after[:2] == calls[:2] and after[2] - calls[2] <= (2 if name == "not_alert_unknown_table" else 0)


def test_own_post_would_be_read_as_an_alert_without_bolts_self_filter(harness):
    """The bot's own diagnosis is an integration post naming a table: Bolt's filter is what stops it."""
    h = harness()
    assert read(post_of(recorded("not_alert_own_post", h)), h.bot.catalog)


def test_forged_or_replayed_deliveries_are_refused(harness):
    h = harness()
    body = event_callback_body(recorded("snowflake_alert_email", h))
    from slack_bolt.request import BoltRequest

    forged = BoltRequest(body=body, headers=signed_headers(body, "not-the-secret", content_type="application/json"))
    assert h.app.dispatch(forged).status == 401
    assert h.app.dispatch(event_request(body, h.secret, timestamp=1_700_000_000)).status == 401
    assert not h.slack.of("chat.postMessage") and not h.redis.keys("syncbot:alert:*")


def test_url_verification_is_answered(harness):
    h = harness()
    body = json.dumps({"token": "legacy-unused", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
                       "type": "url_verification"})
    response = h.app.dispatch(bolt_request(body, h.secret, content_type="application/json"))
    assert response.status == 200 and "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" in response.body


def test_task_aliases_come_from_dms_once_an_hour(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    dms = DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client)
    now = [0.0]
    aliases = TaskAliases(dms, ["aurora-snowflake-cdc", "not-a-task"], clock=lambda: now[0])
    # The task's resource id, and the instance it runs on (an instance's event names its tables).
    expected = {sandbox.task_arn.rsplit(":", 1)[-1]: "aurora-snowflake-cdc",
                "instance:dms-prod/aurora-snowflake-cdc": "aurora-snowflake-cdc"}
    assert aliases.get() == expected  # the unknown task costs only its alias
    calls = backend(sandbox.calls, "dms")
    now[0] = ALIASES_TTL_S - 1
    assert aliases.get() == expected and backend(sandbox.calls, "dms") == calls
    now[0] = ALIASES_TTL_S
    assert aliases.get() == expected and backend(sandbox.calls, "dms") == calls + 2  # two tasks; the instance cached


# -- the misclassifications of real tools' messages (each failed before the per-table reading) -----------

def test_sns_lambda_webhook_ok_is_a_recovery_not_a_new_alert(harness):
    """terraform-aws-notify-slack: "Alarm Name" and "Old State: `ALARM`" made every OK a new alert."""
    h = harness("stalled")
    alarm = recorded("notify_slack_cloudwatch_alarm", h)
    deliver(h, alarm)
    assert headers(replies(h, alarm["ts"])) == ["orders: DMS Task Stalled", "customers: Healthy", "payments: Healthy"]
    before = len(h.slack.of("chat.postMessage"))
    ok = recorded("notify_slack_cloudwatch_ok", h)
    deliver(h, ok)
    [note] = h.slack.of("chat.postMessage")[before:]
    assert note.params["thread_ts"] == alarm["ts"] and note.params["text"].startswith("Recovery reported.")
    assert not replies(h, ok["ts"])


def test_dms_task_stopped_event_gets_the_tasks_diagnoses(harness):
    """A DMS event notification (runbook: DMS Task Stalled) was ignored."""
    h = harness("dms-failed")
    event = recorded("notify_slack_dms_task_stopped", h)
    deliver(h, event)
    assert sorted(t.split(":")[0] for t in headers(replies(h, event["ts"]))) == ["customers", "orders", "payments"]


def test_dms_replication_instance_event_names_the_tables_on_it(harness):
    h = harness("dms-failed")
    event = recorded("notify_slack_dms_instance_storage_failure", h)
    deliver(h, event)
    assert len(headers(replies(h, event["ts"]))) == 3


def test_grouped_grafana_message_fires_one_table_and_recovers_another(harness):
    """[FIRING:1, RESOLVED:1]: "resolved" anywhere used to make it a recovery for both tables."""
    h = harness("stalled")
    earlier = recorded("dashboard_freshness_firing", h)  # customers fired earlier
    deliver(h, earlier)
    before = len(h.slack.of("chat.postMessage"))
    mixed = recorded("grafana_mixed", h)
    deliver(h, mixed)
    posted = h.slack.of("chat.postMessage")[before:]
    assert headers([m for m in posted if m.params["thread_ts"] == mixed["ts"]]) == ["orders: DMS Task Stalled"]
    [note] = [m for m in posted if m.params["thread_ts"] == earlier["ts"]]
    assert note.params["text"].startswith("Recovery reported. Current state: ") and "*customers*" in note.params["text"]
    assert "*orders*" not in note.params["text"]


def test_lambda_blueprint_lines_are_read(harness):
    """"<alarm> state is now INSUFFICIENT_DATA: ..." was ignored, "... state is now OK" read as an alarm."""
    h = harness("stalled")
    insufficient = recorded("lambda_blueprint_insufficient_data", h)
    deliver(h, insufficient)
    assert headers(replies(h, insufficient["ts"]))[0] == "orders: DMS Task Stalled"
    before = len(h.slack.of("chat.postMessage"))
    ok = recorded("lambda_blueprint_ok", h)
    deliver(h, ok)
    [note] = h.slack.of("chat.postMessage")[before:]
    assert note.params["thread_ts"] == insufficient["ts"] and note.params["text"].startswith("Recovery reported.")


@pytest.mark.parametrize("name, header", [
    ("datadog_warning", "orders: Schema Mismatch"),
    ("datadog_no_data", "customers: Healthy"),
    ("elementary_test_warn", "orders: Schema Mismatch"),
])
def test_warnings_and_no_data_are_alerts(harness, name, header):
    """Datadog WARNING / NO DATA fell through (no alert word); dbt test "warn" too."""
    h = harness("schema-mismatch")
    event = recorded(name, h)
    deliver(h, event)
    assert headers(replies(h, event["ts"])) == [header]


# -- the console replays a corpus file ----------------------------------------------------------------------

def test_console_replays_a_corpus_file_into_the_alert_channel(tmp_path):
    import io

    from syncbot.console import Console

    out = io.StringIO()
    console = Console("stalled", out=out)
    try:
        bad = tmp_path / "bad.json"
        bad.write_text("[1, 2]")
        console.run([f"alert @{PAYLOADS / 'grafana_mixed.json'}", f"alert @{bad}", "alert @/nonexistent.json",
                     "alert public.orders is stale"], echo=True)
    finally:
        console.close()
    text = out.getvalue()
    replayed = text.split("alert @")[1]
    assert f"--- Grafana posted in #{CHANNEL} (replayed from {PAYLOADS / 'grafana_mixed.json'}) ---" in replayed
    assert "[FIRING:1, RESOLVED:1] Freshness (Sync)" in replayed
    assert "(in thread) ---\n== orders: DMS Task Stalled ==" in replayed  # the firing table; customers only recovers
    assert "== customers" not in replayed
    assert f"(cannot replay {bad}: not a Slack message event)" in text
    assert "(cannot replay /nonexistent.json: No such file or directory)" in text
    # `alert <text>` still posts text; within the burst window it links to the replayed alert's diagnosis
    typed = text.split(f"--- CloudWatch posted in #{CHANNEL} ---\n  public.orders is stale")[1]
    assert "Another alert for orders within 15 min" in typed  # the console draws mrkdwn as plain text
