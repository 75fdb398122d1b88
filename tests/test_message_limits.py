"""Every message within Slack's limits however big the pipeline: 50 blocks, 3,000 characters a section,
and (msg_blocks_too_long, slackapi/bolt-js#2509) about 13,000 characters of block text in all, kept
under MESSAGE_TEXT_BUDGET; a plain-text message under PLAIN_TEXT_LIMIT. What does not fit is counted."""
from dataclasses import replace
from datetime import datetime, timezone

from bot.diagnostics.checks import check_schema
from bot.gateways.aurora import PgColumn
from bot.maintenance import Finding
from bot.maintenance.report import MaintenanceReport, Topic
from bot.models import ActionKind, CheckName, Status
from handlers.blocks import (
    MAX_BLOCKS, MESSAGE_TEXT_BUDGET, PLAIN_TEXT_LIMIT, SECTION_LIMIT, diagnosis_blocks, fleet_blocks, verdict_lines,
)
from handlers.maintenance import report_blocks


def texts(node) -> list[str]:
    """Every text a message carries (headers, sections, context elements, buttons)."""
    if isinstance(node, list):
        return [t for item in node for t in texts(item)]
    if isinstance(node, dict):
        found = [node["text"]] if isinstance(node.get("text"), str) else []
        return found + [t for key, value in node.items() for t in texts(value)]
    return []


def assert_within_limits(blocks):
    assert len(blocks) <= MAX_BLOCKS
    for block in blocks:
        if block["type"] == "section":
            assert len(block["text"]["text"]) <= SECTION_LIMIT
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150
    assert sum(len(t) for t in texts(blocks)) <= MESSAGE_TEXT_BUDGET


def test_a_drift_of_200_columns_shows_its_statements_and_counts_the_rest(harness):
    h = harness("healthy")
    diag = h.bot.diagnose(h.bot.find("orders"))
    spec = h.bot.find("orders")
    aurora = [PgColumn(f"customer_attribute_{i:03d}_long_name", "character varying", 255) for i in range(200)]
    drift = check_schema(aurora, {}, {}, spec)
    diag = replace(diag, checks=tuple(drift if c.name is CheckName.SCHEMA else c for c in diag.checks))
    blocks = [b.to_dict() for b in diagnosis_blocks(diag, [])]
    assert_within_limits(blocks)
    [schema] = [b["text"]["text"] for b in blocks if b["type"] == "section" and "*Schema drift*" in b["text"]["text"]]
    assert "ALTER TABLE PUBLIC.ORDERS ADD COLUMN CUSTOMER_ATTRIBUTE_000_LONG_NAME VARCHAR(255);" in schema
    shown = schema.count("ALTER TABLE")
    assert shown >= 5 and f"… and {400 - shown} more not shown" in schema
    assert "Aurora has 200 column(s) Snowflake lacks" in schema


def test_a_recovery_line_for_a_task_of_500_tables_fits_and_counts_the_rest(harness):
    h = harness("stalled")
    diags = h.bot.diagnose_all()
    bad = next(d for d in diags if not d.verdict.healthy)
    good = next(d for d in diags if d.verdict.healthy)
    many = [replace(good, table=f"healthy_table_{i:03d}_with_a_long_name") for i in range(499)] + [bad]
    text = verdict_lines(many, "Recovery reported. Current state: ")
    assert len(text) <= PLAIN_TEXT_LIMIT and "\n" not in text
    assert text.startswith(f"Recovery reported. Current state: :red_circle: *{bad.table}*")  # worst first
    shown = text.count("*healthy_table_")
    assert text.endswith(f"… and {499 - shown} more tables ({499 - shown} healthy): `/sync-status` lists them all")


def test_a_500_table_maintenance_report_fits_one_message():
    monday = datetime(2026, 11, 23, 8, 0, tzinfo=timezone.utc)
    finding = Finding(Topic.VACUUM, "public.t", Status.WARNING, "dead tuples 41% of live, last vacuum 12 days ago",
                      "run VACUUM and tune autovacuum", "VACUUM (ANALYZE) public.t;", ("dead 4,100,000",),
                      table="t")
    report = MaintenanceReport(
        tuple(replace(finding, table=f"table_{i:03d}_with_a_long_name", subject=f"public.table_{i:03d}")
              for i in range(500))
        + tuple(replace(finding, status=Status.OK, table=f"fine_table_{i:03d}_with_a_long_name") for i in range(500)),
        monday)
    blocks = [b.to_dict() for b in report_blocks(report)]
    assert_within_limits(blocks)
    notes = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    shown = sum(1 for b in blocks if b["type"] == "section")
    assert any(f"… and {500 - shown} more findings need attention" in n for n in notes)
    [fine] = [n for n in notes if n.startswith(":large_green_circle: OK")]
    assert fine.endswith(f"… and {500 - fine.count('fine_table_')} more OK")


def test_the_fleet_view_of_500_tables_fits_one_message(harness):
    h = harness("pipe-paused")
    diag = h.bot.diagnose(h.bot.find("orders"))
    blocks = [b.to_dict() for b in fleet_blocks([replace(diag, table=f"table_{i:03d}_with_a_long_name")
                                                 for i in range(500)])]
    assert_within_limits(blocks)


def test_a_diagnosis_whose_every_check_is_long_fits_one_message(harness):
    h = harness("pipe-paused")
    diag = h.bot.diagnose(h.bot.find("orders"))
    long = tuple(replace(c, summary="s" * 2900, details=tuple("d" * 290 for _ in range(20))) for c in diag.checks)
    blocks = [b.to_dict() for b in diagnosis_blocks(replace(diag, checks=long), [])]
    assert_within_limits(blocks)
    assert all("more not shown" in b["text"]["text"] for b in blocks if b["type"] == "section"
               and "```" in b["text"]["text"])


def test_an_approval_request_for_400_statements_and_a_long_run_fits_and_counts_the_rest():
    from bot.remediation.approvals import ApprovalRequest
    from handlers.approval_blocks import request_blocks

    steps = tuple(f"ALTER TABLE PUBLIC.ORDERS ADD COLUMN CUSTOMER_ATTRIBUTE_{i:03d}_LONG_NAME VARCHAR(255)"
                  for i in range(400)) + ("COPY INTO STAGING.ORDERS_CDC FROM @STAGE FILES = (" + "'f.csv', " * 2000 + ")",)
    req = ApprovalRequest(id="r1", action=ActionKind.FIX_COLUMNS, table="orders", requester="U0ALICE01", people=2,
                          state="running", created_at=1.0, expires_at=2.0, plan_steps=steps,
                          plan_facts=("f" * 500,) * 10, plan_hash="h", plan_data={},
                          progress=tuple(f"step {i} done after a long wait on Snowflake" for i in range(300)),
                          outcome="o" * 5000)
    blocks = [b.to_dict() for b in request_blocks(req)]
    assert_within_limits(blocks)
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    shown = sum(s.count("ALTER TABLE") for s in sections)
    assert shown >= 50 and f"… and {401 - shown} more not shown here" in sections
    [progress] = [s for s in sections if s.startswith("*Progress*")]
    assert "step 299 done" in progress and "earlier step(s)" in progress
