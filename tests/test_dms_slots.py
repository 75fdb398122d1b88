"""The task's own replication slot, against a real PostgreSQL with logical slots (conftest.logical_pg:
the machine's binaries, wal_level = logical): slots made with pg_create_logical_replication_slot and the
test_decoding plugin, read by pg_recvlogical where a slot must be active, and made `lost` for real by
writing more WAL than max_slot_wal_keep_size keeps."""
import shutil
import subprocess
import time
import uuid

import psycopg
import pytest

from bot.catalog import Maintenance
from bot.diagnostics import slots as slot_check
from bot.diagnostics.verdict import decide
from bot.gateways.aurora import AuroraGateway
from bot.gateways.dms import TaskInfo
from bot.gateways.endpoints import PgSource
from bot.maintenance.findings import wal_findings
from bot.models import ActionKind, CheckName, CheckResult, Section, Status

from conftest import PG_BIN

ARN = "arn:aws:dms:us-east-1:123456789012:task:UPIIRRYFTHAI7AAEHCM6X5CAFXH2ODSHQ7M3WUA"


@pytest.fixture
def source_db(logical_pg):
    """A fresh database on the logical server, dropped with its slots afterwards."""
    name = f"app_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(logical_pg, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    dsn = logical_pg.rsplit("/", 1)[0] + "/" + name
    yield name, dsn
    with psycopg.connect(logical_pg, autocommit=True) as conn:
        for (slot,) in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)):
            conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        conn.execute(f"DROP DATABASE {name} WITH (FORCE)")


def make_slot(dsn, name):
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("SELECT pg_create_logical_replication_slot(%s, 'test_decoding')", (name,))


def lose_wal(dsn):
    """More WAL than max_slot_wal_keep_size (32 MB) behind every slot, then a checkpoint: PostgreSQL
    removes the segments and marks the slots lost."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS filler (x text)")
        for _ in range(6):
            conn.execute("INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 20000)")
            conn.execute("SELECT pg_switch_wal()")
        conn.execute("CHECKPOINT")


def task(status="running", **kw):
    return TaskInfo("aurora-snowflake-cdc", ARN, status, **kw)


def test_the_gateway_reads_real_logical_slots_with_database_and_safe_wal_size(source_db):
    db, dsn = source_db
    make_slot(dsn, "dms_task_slot")
    [slot] = [s for s in AuroraGateway(dsn).replication_slots() if s.database == db]
    assert (slot.name, slot.plugin, slot.active, slot.wal_status) == ("dms_task_slot", "test_decoding", False, "reserved")
    assert slot.safe_wal_size is not None and 0 < slot.safe_wal_size <= 64 * 1024**2
    assert slot.retained_bytes is not None and slot.retained_bytes >= 0


def test_before_postgresql_13_the_check_still_reports_what_it_can(source_db):
    """PostgreSQL 11 and 12 have neither wal_status nor safe_wal_size: the gateway asks without them
    (the query a 12 server is sent, run here on this server), and the check says so."""
    db, dsn = source_db
    make_slot(dsn, "dms_task_slot")
    [slot] = [s for s in AuroraGateway(dsn).replication_slots(server_version=120000) if s.database == db]
    assert slot.wal_status == "" and slot.safe_wal_size is None and slot.retained_bytes is not None
    result = slot_check.check_task_slot(slot_check.claim([slot], PgSource("aurora", "dms_task_slot", db), task("stopped")))
    assert result.status is Status.OK and not result.facts["wal_status_known"]
    assert "wal_status not reported (PostgreSQL before 13" in result.details[0]


def test_a_lost_slot_means_the_task_cannot_resume(source_db):
    db, dsn = source_db
    make_slot(dsn, "dms_task_slot")
    lose_wal(dsn)
    found = [s for s in AuroraGateway(dsn).replication_slots() if s.database == db]
    assert [s.wal_status for s in found] == ["lost"]
    result = slot_check.check_task_slot(slot_check.claim(found, PgSource("aurora", "dms_task_slot", db),
                                                         task("failed", migration_type="full-load-and-cdc")))
    assert result.status is Status.FAILING and result.facts["lost"] and "cannot resume" in result.summary
    dms = CheckResult(CheckName.DMS, Status.FAILING, "task is failed",
                      facts={"running": False, "task_status": "failed", "reloads_tables": True,
                             "migration_type": "full-load-and-cdc"})
    verdict, actions = decide((dms, result))
    assert verdict.section is Section.STALLED and ActionKind.RESTART_TASK not in actions
    assert "reload-target" in verdict.summary and "resume-processing fails again" in verdict.summary


def test_a_leftover_slot_is_never_the_tasks_and_is_wal_retained_for_nobody(source_db):
    db, dsn = source_db
    make_slot(dsn, "dms_task_slot")
    make_slot(dsn, "old_deleted_task_slot")
    every = [s for s in AuroraGateway(dsn).replication_slots() if s.database == db]
    found = slot_check.claim(every, PgSource("aurora", "dms_task_slot", db), task())
    assert found.own.name == "dms_task_slot" and [s.name for s in found.others] == ["old_deleted_task_slot"]
    result = slot_check.check_task_slot(found)
    # The task's slot is inactive while the task runs: that (not the leftover) is the evidence.
    assert result.facts["slot"] == "dms_task_slot" and "old_deleted_task_slot inactive" not in result.summary
    report = {f.subject: f for f in wal_findings(every, Maintenance(), owners={"dms_task_slot": "aurora-snowflake-cdc"})}
    assert report["old_deleted_task_slot"].summary.startswith("WAL retained for nobody")
    assert report["old_deleted_task_slot"].code == "SELECT pg_drop_replication_slot('old_deleted_task_slot');"
    assert "read by DMS task aurora-snowflake-cdc" in report["dms_task_slot"].details


def test_without_slot_name_the_active_slot_in_the_endpoints_database_is_the_running_tasks(source_db):
    """No SlotName: of the database's slots, the one being read while the task runs (pg_recvlogical
    stands in for DMS's reader)."""
    db, dsn = source_db
    make_slot(dsn, "leftover_slot")
    make_slot(dsn, "read_now_slot")
    recv = shutil.which("pg_recvlogical", path=PG_BIN) or shutil.which("pg_recvlogical")
    reader = subprocess.Popen([recv, "-d", dsn, "--slot", "read_now_slot", "--start", "-f", "/dev/null"])
    try:
        deadline = time.monotonic() + 20
        while True:
            every = [s for s in AuroraGateway(dsn).replication_slots() if s.database == db]
            if any(s.active for s in every) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        found = slot_check.claim(every, PgSource("aurora", "", db, "test_decoding"), task())
        assert found.own is not None and found.own.name == "read_now_slot"
        assert "active while the task runs" in found.how
        # With the task stopped, neither slot is being read: the bot cannot tell, and says so.
        stopped = slot_check.claim([s for s in every], PgSource("aurora", "", db, "test_decoding"), task("stopped"))
        result = slot_check.check_task_slot(stopped)
        assert stopped.own is None and stopped.ambiguous and result.status is Status.WARNING
        assert not result.facts["slot_problem"] and "SlotName" in result.summary
    finally:
        reader.terminate()
        reader.wait(timeout=10)


def test_a_slot_name_that_does_not_exist_is_failing(source_db):
    db, dsn = source_db
    make_slot(dsn, "some_other_slot")
    every = [s for s in AuroraGateway(dsn).replication_slots() if s.database == db]
    result = slot_check.check_task_slot(slot_check.claim(every, PgSource("aurora", "dms_expected", db), task()))
    assert result.status is Status.FAILING and "'dms_expected' does not exist" in result.summary
