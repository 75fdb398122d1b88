"""The Slack side of alerts (handlers.alert_posts): message events to plain posts, and those posts read
by the core as a whole."""
import pytest
from alert_corpus import CATALOG, integration, payload

from bot.alerts import Author, Field, Kind, Part, _units, read
from bot.catalog import parse_catalog
from handlers.alert_posts import post_of


# -- the Slack side: message events to plain posts (handlers.alert_posts) ---------------------------------

def event(**fields):
    return {"type": "message", "channel": "C0ALERTS1", "ts": "1767225600.000100", **fields}


@pytest.mark.parametrize("fields, author, in_thread", [
    ({"subtype": "bot_message", "text": "x"}, Author.INTEGRATION, False),        # incoming webhook
    ({"bot_id": "B1", "app_id": "A1", "text": "x"}, Author.INTEGRATION, False),  # an app's chat.postMessage
    ({"subtype": "file_share", "bot_id": "B1", "text": "x"}, Author.INTEGRATION, False),  # an app's upload
    ({"user": "U1", "text": "x"}, Author.PERSON, False),
    ({"subtype": "thread_broadcast", "bot_id": "B1", "text": "x", "thread_ts": "1767225500.000100"},
     Author.INTEGRATION, True),
    ({"bot_id": "B1", "text": "x", "thread_ts": "1767225500.000100"}, Author.INTEGRATION, True),
    ({"bot_id": "B1", "text": "x", "thread_ts": "1767225600.000100"}, Author.INTEGRATION, False),  # its own root
])
def test_new_posts_and_who_wrote_them(fields, author, in_thread):
    post = post_of(event(**fields))
    assert (post.author, post.in_thread) == (author, in_thread)


@pytest.mark.parametrize("fields", [
    {"subtype": "message_changed", "message": {"bot_id": "B1", "text": "ALARM"}},
    {"subtype": "message_deleted"},
    {"subtype": "channel_join", "user": "U1", "text": "<@U1> has joined the channel"},
    {"subtype": "me_message", "user": "U1", "text": "ALARM"},
    {"bot_id": "B1", "text": "ALARM", "hidden": True},
    {"bot_id": "B1", "text": ""},                        # nothing to read
    {"bot_id": "B1", "text": "ALARM", "ts": 1767225600},  # not Slack's shape
])
def test_what_is_never_a_post(fields):
    assert post_of(event(**fields)) is None


def test_mrkdwn_becomes_plain_text():
    post = post_of(event(bot_id="B1", text="&lt;b&gt; <@U0DANA01|dana> <!subteam^S1|@oncall> <!here> in <#C0ALERTS1|alerts>: "
                                            "<https://x.example/orders|PUBLIC.ORDERS> &amp; <https://y.example/a>"))
    assert post.parts[0].text == "<b>    in #alerts: PUBLIC.ORDERS https://x.example/orders & https://y.example/a"


def test_blocks_give_a_headline_titled_fields_and_no_buttons():
    [_, blocks] = post_of(payload("montecarlo_incident")).parts
    assert blocks.headline == ":red_circle: Freshness anomaly"
    assert Field("Status", "Active") in blocks.fields and Field("Affected tables", "sync:public.payments") in blocks.fields
    assert "Resolve" not in blocks.text and "View incident https://getmontecarlo.com/incidents/3f2a" in blocks.text


def test_elementary_context_fields_are_fields():
    [_, blocks] = post_of(payload("elementary_test_warn")).parts
    assert Field("Status", "warn") in blocks.fields and Field("Table", "sync.public.orders") in blocks.fields


def test_attachments_and_emails_are_parts_of_their_own():
    [attachment] = post_of(payload("notify_slack_cloudwatch_ok")).parts  # the empty message text is no part
    assert attachment.text == "AWS CloudWatch notification - aurora-snowflake-cdc-latency-source"
    assert Field("Current State", "`OK`") in attachment.fields
    email = post_of(payload("snowflake_alert_email")).parts[-1]
    assert email.headline == "Snowflake alert: ORDERS_LOAD_FAILURES" and "SYNC.STAGING.ORDERS_CDC" in email.text


def test_the_budget_covers_fields():
    fields = tuple(Field("Table", "public.orders") for _ in range(50_000))
    [unit] = _units([Part("ALARM", "", fields)])
    assert sum(len(f.title) + len(f.value) for f in unit.fields) <= 40_000 and len(unit.fields) <= 40_000 // 18 + 1


def test_hostile_fields_are_bounded_too():
    fields = tuple(Field("Table", "public.orders") for _ in range(50_000)) + (Field("Table", "public.payments"),)
    alerts = read(integration(Part("ALARM: \"lag\" in US East", "", fields)), CATALOG)
    assert [[s.name for s in a.tables] for a in alerts] == [["orders"]]


def test_a_dms_event_that_is_neither_says_nothing_even_beside_an_alert():
    dms = Part("DMS Notification Message", "Event Source: replication-task\nSourceId: aurora-snowflake-cdc\n"
                                           "Event ID: #DMS-EVENT-0080\nEvent Message: task modified")
    post = integration(dms, Part("[FIRING:1] Lag public.orders"))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [(Kind.ALERT, ["orders"])]


def test_a_group_headline_naming_tables_does_not_override_their_sections():
    text = ("**Firing**\n\nValue: B=1\nLabels:\n - table = PUBLIC.ORDERS\n\n"
            "**Resolved**\n\nValue: B=0\nLabels:\n - table = PUBLIC.CUSTOMERS\n")
    post = integration(Part("[FIRING:1, RESOLVED:1] Freshness (PUBLIC.ORDERS PUBLIC.CUSTOMERS)", text))
    assert [(a.kind, [s.name for s in a.tables]) for a in read(post, CATALOG)] == [
        (Kind.ALERT, ["orders"]), (Kind.RECOVERY, ["customers"])]


def test_a_task_event_is_not_read_as_an_instance_of_the_same_name():
    catalog = parse_catalog("""
[[tables]]
name = "orders"
source = "public.orders"
dms_task = "prod"
dms_instance = "dms-a"

[[tables]]
name = "ledger"
source = "finance.ledger"
dms_task = "finance"
dms_instance = "prod"
""")
    fields = (Field("Event Source", "`replication-task`"), Field("SourceId", "`prod`"),
              Field("Event ID", "`#DMS-EVENT-0079 `"))
    alerts = read(integration(Part("DMS Notification Message", "", fields)), catalog)
    assert [[s.name for s in a.tables] for a in alerts] == [["orders"]]
