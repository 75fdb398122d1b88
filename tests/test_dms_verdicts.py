"""The DMS-as-configured verdicts as pure functions, and the runner keeping the task's own status when
DescribeTableStatistics fails (sandbox pipeline on moto)."""
from datetime import datetime, timezone

import pytest

from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.diagnostics.runner import Diagnoser
from bot.diagnostics.verdict import decide
from bot.gateways import GatewayError
from bot.gateways.dms import TableStat, TaskInfo
from bot.gateways.endpoints import S3Target
from bot.gateways.snowflake import LoadRecord, PipeStatus
from bot.models import ActionKind, CheckName, CheckResult, Section, Status

NOW = datetime(2026, 12, 4, 1, 0, tzinfo=timezone.utc)
SPEC = parse_catalog('[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
ARN = "arn:aws:dms:us-east-1:123456789012:task:UPIIRRYFTHAI7AAEHCM6X5CAFXH2ODSHQ7M3WUA"
MISMATCH = ("Number of columns in file (6) does not match that of the corresponding table (7), use file format "
            "option error_on_column_count_mismatch=false to ignore this error")
RUNNING = PipeStatus("RUNNING", 0, NOW)


def failed(*names):
    return [LoadRecord(name, "Load failed", 0, MISMATCH, NOW) for name in names]


def schema_ok():
    return CheckResult(CheckName.SCHEMA, Status.OK, "all columns exist", facts={"alters": [], "missing": {}})


def test_full_load_files_without_op_are_not_schema_mismatch():
    pipe = checks.check_snowpipe(RUNNING, failed("dms/public/orders/LOAD00000001.csv",
                                                 "dms/public/orders/LOAD0000000A.csv.gz"), SPEC, NOW, S3Target("s3"))
    assert pipe.facts["full_load_mismatch"] and not pipe.facts["column_mismatch"]
    verdict, actions = decide((pipe, schema_ok()))
    assert verdict.section is not Section.SCHEMA and ActionKind.FIX_COLUMNS not in actions
    assert ActionKind.RETRY_FILES not in actions  # the same files fail again until something changes
    assert "IncludeOpForFullLoad" in verdict.summary and "no column was added in Aurora" in verdict.summary


def test_with_op_in_full_load_files_a_refused_load_file_is_a_column_difference_again():
    target = S3Target("s3", include_op_for_full_load=True)
    pipe = checks.check_snowpipe(RUNNING, failed("dms/public/orders/LOAD00000001.csv"), SPEC, NOW, target)
    assert pipe.facts["column_mismatch"] and not pipe.facts["full_load_mismatch"]
    assert decide((pipe, schema_ok()))[0].section is Section.SCHEMA


def test_cdc_files_refused_on_their_column_count_stay_schema_mismatch():
    pipe = checks.check_snowpipe(RUNNING, failed("dms/public/orders/20261204-005500000.csv",
                                                 "dms/public/orders/LOAD00000001.csv"), SPEC, NOW, S3Target("s3"))
    assert decide((pipe, schema_ok()))[0].section is Section.SCHEMA


def test_a_real_column_difference_wins_over_full_load_files():
    pipe = checks.check_snowpipe(RUNNING, failed("dms/public/orders/LOAD00000001.csv"), SPEC, NOW, S3Target("s3"))
    schema = CheckResult(CheckName.SCHEMA, Status.FAILING, "Aurora has 1 column Snowflake lacks",
                         facts={"alters": ["ALTER TABLE PUBLIC.ORDERS ADD COLUMN X NUMBER;"], "missing": {"X": 1}})
    verdict, actions = decide((pipe, schema))
    assert verdict.section is Section.SCHEMA and ActionKind.FIX_COLUMNS in actions


def dms_check(**kw):
    return checks.check_dms(TaskInfo("aurora-snowflake-cdc", ARN, **kw), TableStat("public", "orders", "Table error"))


def test_a_cdc_only_task_is_never_offered_a_resync():
    verdict, actions = decide((dms_check(status="running", migration_type="cdc"),))
    assert ActionKind.RESYNC not in actions and "MigrationType is cdc" in verdict.summary
    assert decide((dms_check(status="running", migration_type="full-load-and-cdc"),))[1] == (ActionKind.RESYNC,)


def test_a_task_that_never_ran_is_started_not_resumed():
    check = dms_check(status="ready", stats={"StartDate": None})
    assert check.facts["never_ran"] and "start-replication" in check.summary
    verdict, actions = decide((check,))
    assert actions == (ActionKind.RESTART_TASK,) and "never run" in verdict.summary
    ran = dms_check(status="ready", stats={"StartDate": NOW})
    assert not ran.facts["never_ran"]


def test_table_statistics_failing_never_hides_the_tasks_status(make_sandbox, monkeypatch):
    sandbox = make_sandbox("dms-failed", real_aurora=False)

    def throttled(arn):
        raise GatewayError("DescribeTableStatistics failed: ThrottlingException")

    monkeypatch.setattr(sandbox.gateways.dms, "table_statistics", throttled)
    diag = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders"))
    dms = diag.check(CheckName.DMS)
    assert dms.status is Status.FAILING and "task aurora-snowflake-cdc is failed (FATAL_ERROR)" == dms.summary
    assert any(d.startswith("LastFailureMessage: Last Error") for d in dms.details)
    assert "TableState: unknown (table statistics not read: AWS: DescribeTableStatistics failed: ThrottlingException)" \
        in dms.details
    assert diag.actions[:1] == (ActionKind.RESTART_TASK,)


def test_table_statistics_failing_on_a_running_task_is_a_warning_not_unknown(make_sandbox, monkeypatch):
    sandbox = make_sandbox("healthy", real_aurora=False)
    monkeypatch.setattr(sandbox.gateways.dms, "table_statistics",
                        lambda arn: (_ for _ in ()).throw(GatewayError("DescribeTableStatistics failed: AccessDeniedException")))
    dms = Diagnoser(sandbox.gateways).diagnose(sandbox.catalog.find("orders")).check(CheckName.DMS)
    assert dms.status is Status.WARNING and "is running; the table's state is unknown" in dms.summary


def test_the_sandbox_refuses_what_aws_refuses(make_sandbox):
    from botocore.exceptions import ClientError

    sandbox = make_sandbox("cdc-only-rows-missing", real_aurora=False)
    with pytest.raises(ClientError, match="full-load or full-load-and-cdc"):
        sandbox.dms_client.reload_tables(ReplicationTaskArn=sandbox.task_arn,
                                         TablesToReload=[{"SchemaName": "public", "TableName": "orders"}])


def test_the_sandbox_refuses_a_resume_on_a_first_run(make_sandbox):
    from botocore.exceptions import ClientError

    never = make_sandbox("never-ran", real_aurora=False)
    with pytest.raises(ClientError, match="start-replication"):
        never.dms_client.start_replication_task(ReplicationTaskArn=never.task_arn,
                                                StartReplicationTaskType="resume-processing")
    never.dms_client.start_replication_task(ReplicationTaskArn=never.task_arn,
                                            StartReplicationTaskType="start-replication")
    assert never.dms_task().start_types == ["start-replication"]


def test_the_latency_and_log_follow_the_tasks_own_instance_not_the_catalogs(make_sandbox):
    from dataclasses import replace

    sandbox = make_sandbox("healthy", real_aurora=False)
    moved = replace(sandbox.catalog.find("orders"), dms_instance="DMS-OLD-INSTANCE")
    latency = Diagnoser(sandbox.gateways).diagnose(moved).check(CheckName.LATENCY)
    assert latency.status is Status.OK and latency.facts["latency_s"] is not None  # dms-prod's series
    assert "the task was moved, followed it" in latency.details[0]
    same = replace(sandbox.catalog.find("orders"), dms_instance="DMS-PROD")  # stored lower-case by DMS
    assert Diagnoser(sandbox.gateways).diagnose(same).check(CheckName.LATENCY).details == ()
