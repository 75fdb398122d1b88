"""The alert corpus and catalog the alert tests share: tests/payloads/ holds Slack message events in
the shapes real tools post (each file's "_source" says where the shape comes from) with what each must be
read as ("_expect": kind -> tables)."""
import json
from pathlib import Path

from bot.alerts import Author, Part, Post, read
from bot.catalog import parse_catalog
from handlers.alert_posts import post_of

PAYLOADS = Path(__file__).parent / "payloads"
RESOURCE_ID = "Q7XKZ3VBNJ2M4LPRT6WYHC5DSA"  # the DMS task's resource id in the recorded CloudWatch alarms
ALIASES = {RESOURCE_ID: "aurora-snowflake-cdc"}
TASK = ("orders", "customers", "payments")

CATALOG = parse_catalog("""
[defaults]
dms_task = "aurora-snowflake-cdc"
dms_instance = "dms-prod"

[[tables]]
name = "orders"
source = "public.orders"

[[tables]]
name = "customers"
source = "public.customers"

[[tables]]
name = "payments"
source = "public.payments"

[[tables]]
name = "ledger"
source = "finance.ledger"
dms_task = "finance-cdc"
dms_instance = "dms-finance"

[alerts]
channels = ["C0ALERTS1"]
""")


def payload(name: str) -> dict:
    return json.loads((PAYLOADS / f"{name}.json").read_text())


def reading(event, aliases=ALIASES) -> dict[str, tuple[str, ...]]:
    post = post_of(event)
    alerts = read(post, CATALOG, lambda: aliases) if post else ()
    return {alert.kind.value: tuple(s.name for s in alert.tables) for alert in alerts}


def integration(*parts: Part) -> Post:
    return Post("C0ALERTS1", "1767225600.000100", Author.INTEGRATION, parts)
