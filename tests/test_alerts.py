"""What counts as an alert about the sync (bot.alerts), which tables it names and whether it fires or
recovers, on the corpus in tests/payloads/ (alert_corpus.py). The Slack side, message events to plain
posts, is tested in test_alert_posts.py."""
import json

import pytest
from alert_corpus import ALIASES, CATALOG, PAYLOADS, TASK, integration, payload, reading

from bot.alerts import Author, Field, Kind, Part, Post, Unit, classify, classify_unit, read, tables_named
from bot.catalog import parse_catalog
from handlers.alert_posts import post_of

CORPUS = sorted(p.stem for p in PAYLOADS.glob("*.json"))


@pytest.mark.parametrize("name", CORPUS)
def test_every_payload_in_the_corpus_is_read_as_expected(name):
    event = payload(name)
    assert event["_source"].strip(), f"{name}: say where the shape comes from"
    expected = {kind: tuple(tables) for kind, tables in event["_expect"].items()}
    assert reading(event) == expected


def test_the_corpus_covers_the_tools():
    tools = ("chatbot_", "notify_slack_cloudwatch_alarm", "notify_slack_cloudwatch_ok", "notify_slack_dms_",
             "notify_slack_default_", "lambda_blueprint_", "grafana_mixed", "dashboard_freshness_firing",
             "dashboard_freshness_resolved", "alertmanager_", "datadog_warning", "datadog_no_data", "pagerduty_",
             "snowflake_alert_email", "snowpipe_error_email", "notify_slack_snowflake_task_error",
             "elementary_test_warn", "montecarlo_incident", "not_alert_thread_broadcast")
    for tool in tools:
        assert any(name.startswith(tool) for name in CORPUS), tool


def test_alert_and_recovery_carry_the_message():
    event = payload("grafana_mixed")
    alerts = read(post_of(event), CATALOG)
    assert [(a.kind, a.channel, a.ts) for a in alerts] == [(Kind.ALERT, "C0ALERTS1", event["ts"]),
                                                           (Kind.RECOVERY, "C0ALERTS1", event["ts"])]


def test_aliases_are_asked_only_for_posts_that_report_a_state():
    asked = []

    def aliases():
        asked.append(1)
        return ALIASES

    for name in ("not_alert_human_chatter", "not_alert_deploy_bot", "not_alert_thread_reply"):
        read(post_of(payload(name)), CATALOG, aliases)
    assert not asked
    read(post_of(payload("chatbot_cloudwatch_alarm")), CATALOG, aliases)
    assert asked == [1]


def test_chatbot_alarm_needs_the_resource_id_to_name_the_task():
    """CloudWatch's ReplicationTaskIdentifier is the resource id, not the catalog's identifier."""
    assert reading(payload("chatbot_cloudwatch_alarm"), aliases={}) == {}


# -- precedence: a structured state, then a headline's state word, then words -----------------------------

def test_a_field_title_cannot_flip_a_recovery():
    """notify_slack's OK: "Alarm Name", "Old State: `ALARM`" and "Alarm reason" all say alarm; the
    Current State field decides."""
    fields = (Field("Alarm Name", "`orders-freshness`"), Field("Old State", "`ALARM`"),
              Field("Current State", "`OK`"), Field("Alarm reason", "`Threshold Crossed: alarm cleared`"))
    assert classify_unit(Unit("", "AWS CloudWatch notification", fields)) == (Kind.RECOVERY, 3)


@pytest.mark.parametrize("title, value, kind", [
    ("State", "ALARM", Kind.ALERT),
    ("*Current State*", "*OK*", Kind.RECOVERY),
    ("New State", "`INSUFFICIENT_DATA`", Kind.ALERT),
    ("Status", ":white_check_mark: Resolved", Kind.RECOVERY),
    ("Status", "warn", Kind.ALERT),
    ("Monitor Status", "No Data", Kind.ALERT),
    ("Test status", "pass", Kind.RECOVERY),
])
def test_state_fields_in_any_common_spelling(title, value, kind):
    assert classify_unit(Unit("", "", (Field(title, value),))) == (kind, 3)


@pytest.mark.parametrize("text, kind", [
    ("*Current State:* `OK`\n*Old State:* `ALARM`", Kind.RECOVERY),
    ("Old State: ALARM\nState: OK", Kind.RECOVERY),
    ("*Status:* warn     |", Kind.ALERT),
    ("Alarm State: **INSUFFICIENT_DATA**", Kind.ALERT),
])
def test_state_written_inline(text, kind):
    assert classify_unit(Unit("", text)) == (kind, 3)


def test_an_unknown_state_value_leaves_it_to_the_headline():
    unit = Unit("Triggered: pipe paused", "", (Field("Status", "Acknowledged"),))
    assert classify_unit(unit) == (Kind.ALERT, 2)


@pytest.mark.parametrize("text, kind", [
    ('{"AlarmName": "x", "NewStateValue": "OK", "OldStateValue": "ALARM"}', Kind.RECOVERY),
    ('{"AlarmName": "x", "NewStateValue": "ALARM", "OldStateValue": "OK"}', Kind.ALERT),
    ("- State Change:  ALARM -> OK", Kind.RECOVERY),
    ("State: OK\nThreshold Crossed (minimum 3 datapoints for ALARM -> OK transition). Alarm cleared", Kind.RECOVERY),
    ("State: INSUFFICIENT_DATA", Kind.ALERT),  # a stopped DMS task emits no latency at all
    ('OK: "orders-freshness" in US East (N. Virginia)', Kind.RECOVERY),
    ('"orders-freshness-alarm" state is now OK: Threshold Crossed', Kind.RECOVERY),
    ("orders-freshness state is now INSUFFICIENT_DATA: Insufficient Data", Kind.ALERT),
    ("[RESOLVED] Freshness PUBLIC.ORDERS alert", Kind.RECOVERY),
    ("[FIRING:1, RESOLVED:1] Freshness", Kind.ALERT),
    ("[No data on {table:public.orders}] Snowflake freshness", Kind.ALERT),
    ("[Warn on {table:public.orders}] Snowflake freshness", Kind.ALERT),
    ("Recovered: Snowpipe errors on orders", Kind.RECOVERY),
    (":red_circle: Triggered: pipe paused", Kind.ALERT),
    ("Incident #12 resolved by Dana", Kind.RECOVERY),
    ("INGEST_FAILED_FILE", Kind.ALERT),
    ("Ok, shipped orders-api", None),
    ("Deployed orders-api v2.3.1", None),
    ("Weekly report: 12 tables synced", None),
])
def test_classify(text, kind):
    assert classify(text) is kind


@pytest.mark.parametrize("text", [
    "Deployed orders-freshness-alarm dashboard",   # a word inside a hyphenated name is the name's
    " - alertname = DmsTaskFailed\n - table = PUBLIC.ORDERS",  # label lines name things; they say no state
    "see https://grafana.example/alerting/list",
])
def test_stray_words_in_names_labels_and_links_are_not_states(text):
    assert classify(text) is None


def test_a_mention_is_not_a_state():
    event = {**payload("datadog_recovered")}
    event["attachments"] = [{**event["attachments"][0], "title": "Snowflake freshness PUBLIC.ORDERS",
                             "text": "back within threshold <!subteam^S07ALERTS|@alerts-oncall> <@U0ALERTED|failed-bot>"}]
    assert reading(event) == {}


# -- one message, several alerts ---------------------------------------------------------------------------

def test_grouped_sections_decide_per_table():
    """Before: "resolved" anywhere made the whole message a recovery for every table it named."""
    assert reading(payload("grafana_mixed")) == {"alert": ("orders",), "recovery": ("customers",)}


def test_the_group_headline_speaks_for_tables_no_section_names():
    text = "**Firing**\n\nValue: B=1\nLabels:\n - alertname = Lag\n"
    post = integration(Part("[FIRING:1] Lag public.orders", text))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, ["orders"])]


@pytest.mark.parametrize("first, second", [("[RESOLVED] Freshness PUBLIC.ORDERS", "[FIRING:1] Lag PUBLIC.ORDERS"),
                                           ("[FIRING:1] Lag PUBLIC.ORDERS", "[RESOLVED] Freshness PUBLIC.ORDERS")])
def test_a_table_firing_in_one_part_and_resolved_in_another_is_an_alert(first, second):
    post = integration(Part(first), Part(second))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, ["orders"])]


def test_a_part_without_a_state_shares_the_strongest_state_in_the_post():
    post = integration(Part("Recovered: sync lag"), Part("", "State: ALARM"), Part("Details", "PUBLIC.PAYMENTS"))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, ["payments"])]


def test_a_part_without_a_state_shares_the_posts():
    post = integration(Part("", "ALARM: \"sync-lag\" in US East"), Part("Details", "Dimensions: PUBLIC.PAYMENTS"))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, ["payments"])]


# -- DMS event notifications ------------------------------------------------------------------------------

@pytest.mark.parametrize("number, kind", [
    ("0078", Kind.ALERT), ("0079", Kind.ALERT), ("0082", Kind.ALERT), ("0091", Kind.ALERT), ("0092", Kind.ALERT),
    ("0007", Kind.ALERT), ("0031", Kind.ALERT), ("0036", Kind.ALERT), ("0037", Kind.ALERT),
    ("0069", Kind.RECOVERY), ("0093", Kind.RECOVERY),
    ("0081", None), ("0080", None), ("0073", None), ("0074", None), ("0012", None), ("0047", None),
])
def test_dms_event_ids(number, kind):
    # the other fields say "failed": the event id decides, even when it says neither
    text = f"Event ID: http://docs.aws.amazon.com/dms/latest/userguide/CHAP_Events.html#DMS-EVENT-{number}\n" \
           "Event Message: previous run failed"
    assert classify_unit(Unit("DMS Notification Message", text)) == (kind, 3)


def test_a_dms_instance_event_names_the_tables_of_every_task_on_it():
    fields = (Field("Event Source", "`replication-instance`"), Field("SourceId", "`dms-finance`"),
              Field("Event ID", "`...#DMS-EVENT-0031 `"))
    post = integration(Part("DMS Notification Message", "AWS notification", fields))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, ["ledger"])]


def test_a_dms_event_as_sns_json_is_read_too():
    """SNS email or an SNS-to-webhook function posting the DMS message itself."""
    message = {"Event Source": "replication-instance", "Event Time": "2026-01-01 00:40:12.345",
               "Identifier Link": "https://console.aws.amazon.com/dms/home?region=us-east-1#replicationInstances:",
               "SourceId": "dms-prod", "Event ID": "http://docs.aws.amazon.com/dms/latest/userguide/"
               "CHAP_Events.html#DMS-EVENT-0007 ", "Event Message": "Free storage for the instance is low."}
    post = integration(Part("DMS Notification Message", json.dumps(message)))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, list(TASK))]


def test_a_dms_event_that_is_neither_names_nothing():
    assert reading(payload("not_alert_dms_task_modified")) == {}


# -- tables -----------------------------------------------------------------------------------------------

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


# -- who posted, and where --------------------------------------------------------------------------------

def test_people_and_thread_replies_are_never_alerts():
    part = Part("ALARM: \"orders-freshness\" in US East")
    assert read(Post("C0ALERTS1", "1.1", Author.PERSON, (part,)), CATALOG) == ()
    assert read(Post("C0ALERTS1", "1.1", Author.INTEGRATION, (part,), in_thread=True), CATALOG) == ()
    assert read(Post("C0ALERTS1", "1.1", Author.INTEGRATION, (part,)), CATALOG)


def test_hostile_text_is_bounded():
    huge = Part("", "ALARM " + "public.orders " * 200_000)
    post = integration(huge, Part("", "public.payments failed"))
    alerts = read(post, CATALOG)
    # the first part fills the budget; the rest is not read at all
    assert [[s.name for s in a.tables] for a in alerts] == [["orders"]]
