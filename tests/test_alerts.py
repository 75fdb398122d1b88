"""What counts as an alert about the sync and which tables it names, on recorded message events
(tests/payloads/): AWS Chatbot CloudWatch alarms, SNS JSON and SNS email, Snowpipe error notifications
and Snowflake alert emails forwarded to Slack, a freshness dashboard, PagerDuty."""
import json
from pathlib import Path

import pytest

from bot.alerts import Kind, classify, post_of, read, tables_named, text_of
from bot.catalog import parse_catalog

PAYLOADS = Path(__file__).parent / "payloads"
RESOURCE_ID = "Q7XKZ3VBNJ2M4LPRT6WYHC5DSA"  # the DMS task's resource id in the recorded CloudWatch alarms
ALIASES = {RESOURCE_ID: "aurora-snowflake-cdc"}
TASK = ("orders", "customers", "payments")

CATALOG = parse_catalog("""
[defaults]
dms_task = "aurora-snowflake-cdc"

[[tables]]
name = "orders"
source = "public.orders"

[[tables]]
name = "customers"
source = "public.customers"

[[tables]]
name = "payments"
source = "public.payments"

[alerts]
channels = ["C0ALERTS1"]
""")


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def names(alert) -> tuple[str, ...]:
    return tuple(spec.name for spec in alert.tables)


@pytest.mark.parametrize("name, kind, tables", [
    # AWS Chatbot: the task only by the resource id in the alarm's dimensions
    ("chatbot_cloudwatch_alarm", Kind.ALERT, TASK),
    ("chatbot_cloudwatch_ok", Kind.RECOVERY, TASK),
    # SNS notification JSON posted by a webhook: the task identifier is in the alarm name
    ("sns_json_alarm", Kind.ALERT, TASK),
    # CloudWatch alarm email (a custom freshness metric) forwarded to Slack: final table in the dimensions
    ("sns_email_alarm", Kind.ALERT, ("orders",)),
    # Snowpipe error notification through SNS email: database-qualified pipe and staging table
    ("snowpipe_error_email", Kind.ALERT, ("orders",)),
    # Snowflake ALERT whose action sends an email: the staging table
    ("snowflake_alert_email", Kind.ALERT, ("orders",)),
    # a dashboard's freshness alert (attachments), firing and resolved
    ("dashboard_freshness_firing", Kind.ALERT, ("customers",)),
    ("dashboard_freshness_resolved", Kind.RECOVERY, ("customers",)),
    # PagerDuty (blocks): the pipe
    ("pagerduty_triggered", Kind.ALERT, ("payments",)),
    ("pagerduty_resolved", Kind.RECOVERY, ("payments",)),
])
def test_recorded_alerts_are_read(name, kind, tables):
    event = payload(name)
    alert = read(event, CATALOG, lambda: ALIASES)
    assert alert is not None, name
    assert (alert.kind, names(alert), alert.channel, alert.ts) == (kind, tables, "C0ALERTS1", event["ts"])


@pytest.mark.parametrize("name", [
    "not_alert_human_chatter",     # a person typing ALARM and a table name
    "not_alert_thread_reply",      # an alarm posted as a reply in a thread
    "not_alert_edit",              # message_changed of an alarm
    "not_alert_deletion",          # message_deleted of an alarm
    "not_alert_deploy_bot",        # an integration naming the task, with nothing alarming
    "not_alert_unknown_table",     # an alarm about a table the catalog does not have
])
def test_recorded_non_alerts_are_ignored(name):
    assert read(payload(name), CATALOG, lambda: ALIASES) is None


def test_aliases_are_asked_only_for_alerts():
    asked = []

    def aliases():
        asked.append(1)
        return ALIASES

    for name in ("not_alert_human_chatter", "not_alert_edit", "not_alert_deploy_bot"):
        read(payload(name), CATALOG, aliases)
    assert not asked
    read(payload("chatbot_cloudwatch_alarm"), CATALOG, aliases)
    assert asked == [1]


def test_chatbot_alarm_needs_the_resource_id_to_name_the_task():
    """CloudWatch's ReplicationTaskIdentifier is the resource id, not the catalog's identifier."""
    assert read(payload("chatbot_cloudwatch_alarm"), CATALOG) is None


def test_text_is_gathered_from_attachments_blocks_and_emails():
    chatbot = text_of(payload("chatbot_cloudwatch_alarm"))
    assert "State: ALARM" in chatbot and f"ReplicationTaskIdentifier = {RESOURCE_ID}" in chatbot
    assert "CDCLatencySource" in chatbot
    pagerduty = text_of(payload("pagerduty_triggered"))
    assert "*Status*\nTriggered" in pagerduty and "STAGING.PAYMENTS_PIPE" in pagerduty
    email = text_of(payload("snowpipe_error_email"))
    assert '"pipeName": "SYNC.STAGING.ORDERS_PIPE"' in email and "AWS Notification Message" in email
    # Slack's escapes are undone, so the SNS JSON in a code block reads as JSON
    assert '"NewStateValue": "ALARM"' in text_of(payload("sns_json_alarm"))


@pytest.mark.parametrize("text, kind", [
    ('{"AlarmName": "x", "NewStateValue": "OK", "OldStateValue": "ALARM"}', Kind.RECOVERY),
    ('{"AlarmName": "x", "NewStateValue": "ALARM", "OldStateValue": "OK"}', Kind.ALERT),
    ("- State Change:  ALARM -> OK", Kind.RECOVERY),
    # the reason text mentions both states; the new state decides
    ("State: OK\nThreshold Crossed (minimum 3 datapoints for ALARM -> OK transition). Alarm cleared", Kind.RECOVERY),
    ("State: INSUFFICIENT_DATA", Kind.ALERT),  # a stopped DMS task emits no latency at all
    ('OK: "orders-freshness" in US East (N. Virginia)', Kind.RECOVERY),
    ("[RESOLVED] Freshness PUBLIC.ORDERS", Kind.RECOVERY),
    ("Incident #12 resolved by Dana", Kind.RECOVERY),
    ("[FIRING:2] Freshness", Kind.ALERT),
    ("Triggered: pipe paused", Kind.ALERT),
    ("INGEST_FAILED_FILE", Kind.ALERT),
    ("Deployed orders-api v2.3.1", None),
    ("Weekly report: 12 tables synced", None),
])
def test_classify(text, kind):
    assert classify(text) is kind


@pytest.mark.parametrize("text, tables", [
    ("ALARM on PUBLIC.ORDERS", ("orders",)),
    ("alarm orders-freshness-minutes", ("orders",)),
    ("sync.staging.customers_cdc failed", ("customers",)),
    ("pipe Staging.Payments_Pipe paused", ("payments",)),
    ("STAGING.ORDERS_MERGE task failed", ("orders",)),
    ("public.orders and public.payments are stale", ("orders", "payments")),
    ("orders_archive is stale", ()),            # another table whose name starts alike
    ("reorders backlog critical", ()),
    ("aurora-snowflake-cdc-latency-target ALARM", TASK),
    ("aurora-snowflake ALARM", ()),
])
def test_tables_are_named_by_whole_identifiers(text, tables):
    assert tuple(s.name for s in tables_named(text, CATALOG)) == tables


def test_longest_task_identifier_wins():
    catalog = parse_catalog("""
[[tables]]
name = "orders"
source = "public.orders"
dms_task = "aurora-cdc"

[[tables]]
name = "ledger"
source = "finance.ledger"
dms_task = "aurora-cdc-2"
""")
    assert [s.name for s in tables_named("aurora-cdc-2-latency ALARM", catalog)] == ["ledger"]
    assert [s.name for s in tables_named("aurora-cdc-latency ALARM", catalog)] == ["orders"]
    assert [s.name for s in tables_named("ALARM for task RID2", catalog, {"RID2": "aurora-cdc-2"})] == ["ledger"]
    # an alias for a task the catalog does not have names nothing
    assert tables_named("ALARM for task RID9", catalog, {"RID9": "elsewhere"}) == ()


def test_a_person_forwarding_an_email_is_an_integration_post():
    post = post_of(payload("snowflake_alert_email"))
    assert post is not None and post.text.startswith("Snowflake alert: ORDERS_LOAD_FAILURES")
    assert post_of(payload("not_alert_human_chatter")) is None


def test_hostile_text_is_bounded():
    event = {**payload("dashboard_freshness_firing"), "text": "ALARM " + "x" * 1_000_000}
    assert len(text_of(event)) <= 40_000
