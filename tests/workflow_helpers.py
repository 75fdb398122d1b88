"""Shared by the workflow tests: a harness whose catalog names owners (and, if asked, no suppression
window), alerts posted in the alert channel, and clicks on an annotation's Snooze menu."""
import json
import time
from dataclasses import replace

from conftest import Harness

from bot.catalog import Alerts
from syncbot.sandbox.slack import block_actions_body, bolt_request, event_callback_body, event_request

ALERTS = "C0ALERTS1"
OWNERS = ("S0DATAENG", "U0CAROL03")
TEXT = 'ALARM: "orders-freshness" in US East (N. Virginia): PUBLIC.ORDERS is stale'


def workflow_harness(make_sandbox, redis, slack, scenario, window=15):
    sandbox = make_sandbox(scenario)
    tables = tuple(replace(t, owners=OWNERS) if t.name == "orders" else t for t in sandbox.catalog.tables)
    sandbox.catalog = replace(sandbox.catalog, tables=tables, alerts=Alerts((ALERTS,), window))
    return Harness(sandbox, redis, slack)


def alert(h, text=TEXT):
    """An alerting integration's post in the alert channel; its ts."""
    ts = f"{time.time():.6f}"
    event = {"type": "message", "subtype": "bot_message", "bot_id": "B0ALERTER", "username": "CloudWatch",
             "text": text, "channel": ALERTS, "channel_type": "channel", "ts": ts, "event_ts": ts}
    assert h.app.dispatch(event_request(event_callback_body(event), h.secret)).status == 200
    return ts


def in_thread(h, ts):
    return [c for c in h.slack.of("chat.postMessage") if c.params.get("thread_ts") == ts]


def annotation_of(h, ts, table="orders"):
    return next(c for c in in_thread(h, ts) if c.params.get("blocks")
                and c.params["blocks"][0].get("text", {}).get("text", "").startswith(f"{table}:"))


def snooze(h, message, length, user, table="orders"):
    action = {"type": "static_select", "action_id": "syncbot.snooze", "block_id": f"syncbot.snooze.{table}",
              "selected_option": {"text": {"type": "plain_text", "text": length}, "value": f"{length}|{table}"}}
    body = block_actions_body(action, user, ALERTS, message.ts, h.slack.response_url(),
                              thread_ts=message.params["thread_ts"])
    assert h.app.dispatch(bolt_request(body, h.secret)).status == 200


def press_in_alerts(h, button, user, message):
    action = {"action_id": button["action_id"], "block_id": "b", "value": button["value"], "text": button["text"]}
    body = block_actions_body(action, user, ALERTS, message.ts, h.slack.response_url(),
                              thread_ts=message.params.get("thread_ts"))
    assert h.app.dispatch(bolt_request(body, h.secret)).status == 200


def blocks_text(params):
    return json.dumps(params.get("blocks", []), ensure_ascii=False)
