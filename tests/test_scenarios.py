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
    "schema-mismatch": (Section.SCHEMA, Where.DOWNSTREAM, (A.ADD_COLUMNS, A.PAUSE_PIPE, A.RETRY_FILES)),
    "pipe-paused": (Section.LAGGING, Where.DOWNSTREAM, (A.RESUME_PIPE,)),
    "load-failed": (Section.LAGGING, Where.DOWNSTREAM, (A.RETRY_FILES, A.PAUSE_PIPE)),
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


def test_fleet_is_sorted_worst_first(make_sandbox):
    from bot.core import SyncBot

    sandbox = make_sandbox("pipe-paused")
    bot = SyncBot(sandbox.catalog, Diagnoser(sandbox.gateways), redis=None)
    assert [d.table for d in bot.diagnose_all()] == ["orders", "customers", "payments"]
