"""Every runbook verdict, end to end through the real gateways: moto (AWS), fakesnow through the
Snowflake connector, and the machine's PostgreSQL as Aurora."""
import pytest

from bot.diagnostics.runner import Diagnoser
from bot.models import ActionKind as A
from bot.models import CheckName, Section, Status, Where

EXPECTED = {
    "healthy": (Section.HEALTHY, Where.NONE, ()),
    "dms-failed": (Section.LAGGING, Where.UPSTREAM, (A.RESTART_TASK,)),
    "stalled": (Section.STALLED, Where.UPSTREAM, (A.RESTART_TASK, A.RESYNC)),
    "schema-mismatch": (Section.SCHEMA, Where.DOWNSTREAM, (A.FIX_COLUMNS, A.PAUSE_PIPE, A.RETRY_FILES)),
    "pipe-paused": (Section.LAGGING, Where.DOWNSTREAM, (A.RESUME_PIPE,)),
    "load-failed": (Section.LAGGING, Where.DOWNSTREAM, (A.RETRY_FILES, A.PAUSE_PIPE)),
    "merge-task-suspended": (Section.LAGGING, Where.DOWNSTREAM, (A.RESUME_TASK,)),
    "rows-missing": (Section.LAGGING, Where.UNKNOWN, (A.RESYNC,)),
    "column-widened": (Section.SCHEMA, Where.DOWNSTREAM, (A.FIX_COLUMNS, A.PAUSE_PIPE, A.RETRY_FILES)),
    "stale-pipe": (Section.LAGGING, Where.DOWNSTREAM, (A.RESUME_PIPE, A.RESYNC)),
}


@pytest.mark.parametrize("scenario", EXPECTED)
def test_scenario_verdict(make_sandbox, scenario):
    sandbox = make_sandbox(scenario)
    diag = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders"))
    assert (diag.verdict.section, diag.verdict.where, diag.actions) == EXPECTED[scenario]
    # Every check ran against its backend: none is unknown on a working pipeline (the slot check is
    # a warning on the test PostgreSQL, which has no logical slot).
    assert all(c.status is not Status.UNKNOWN for c in diag.checks)
    assert diag.check(CheckName.SLOT).status is Status.WARNING


def test_schema_mismatch_reads_real_information_schema(make_sandbox):
    sandbox = make_sandbox("schema-mismatch")
    diag = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders"))
    assert diag.check(CheckName.SCHEMA).facts["alters"] == [
        "ALTER TABLE PUBLIC.ORDERS ADD COLUMN DISCOUNT_CODE VARCHAR(64);",
        "ALTER TABLE PUBLIC.ORDERS ADD COLUMN LOYALTY_POINTS NUMBER(10,0);",
        "ALTER TABLE STAGING.ORDERS_CDC ADD COLUMN DISCOUNT_CODE VARCHAR(64);",
        "ALTER TABLE STAGING.ORDERS_CDC ADD COLUMN LOYALTY_POINTS NUMBER(10,0);",
    ]


def test_dms_failure_evidence_is_shown(make_sandbox):
    sandbox = make_sandbox("dms-failed")
    dms = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders")).check(CheckName.DMS)
    assert "Status: failed" in dms.details and "StopReason: FATAL_ERROR" in dms.details
    assert any(d.startswith("LastFailureMessage: Last Error") for d in dms.details)
    assert "TablesErrored: 1" in dms.details


@pytest.mark.parametrize("scenario", ["pipe-paused", "merge-task-suspended", "rows-missing", "column-widened",
                                      "stale-pipe"])
def test_fleet_is_sorted_worst_first(make_sandbox, scenario):
    from bot.services import assemble
    from bot.models import overall

    sandbox = make_sandbox(scenario, real_aurora=False)
    bot = assemble(sandbox.catalog, sandbox.gateways, None)
    diags = bot.diagnose_all()
    assert [d.table for d in diags] == ["orders", "customers", "payments"]
    assert [overall(d) for d in diags] == [Status.FAILING, Status.OK, Status.OK]


@pytest.mark.parametrize("scenario, evidence", [
    ("merge-task-suspended", (CheckName.MERGE_TASK, "merge task STAGING.ORDERS_MERGE is suspended")),
    ("rows-missing", (CheckName.ROWS, "2,998 rows missing: Aurora has 3,000 (exact), PUBLIC.ORDERS has 2")),
    ("column-widened", (CheckName.SCHEMA, "column STATUS is character varying(255) in Aurora but VARCHAR(32)")),
    ("stale-pipe", (CheckName.SNOWPIPE, "stale (paused longer than the 14 days notifications are kept)")),
])
def test_each_new_scenario_names_its_cause_with_evidence(make_sandbox, scenario, evidence):
    sandbox = make_sandbox(scenario)
    diag = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders"))
    name, words = evidence
    assert diag.check(name).status is Status.FAILING and words in diag.check(name).summary
    assert any(words in r for r in diag.verdict.reasons)
