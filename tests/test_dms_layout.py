"""The task as DMS is really configured, through botocore against moto's server: the S3 target
endpoint's S3Settings made with CreateEndpoint and read back with DescribeEndpoints (cached), the newest
CDC file found in every documented layout with a bounded listing, the replication instance followed
from the task's ReplicationInstanceArn."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from botocore.stub import Stubber

from bot.catalog import parse_catalog
from bot.diagnostics import checks
from bot.diagnostics.layout import Listed, instance_for, locate
from bot.gateways import GatewayError, NotFound
from bot.gateways.dms import DmsGateway
from bot.gateways.endpoints import PARTITION_DELIMITERS, PARTITION_SEQUENCES
from bot.gateways.s3 import S3Gateway, cdc_time
from bot.models import Status
from syncbot.sandbox.pipeline import layout_key

NOW = datetime(2026, 12, 4, 1, 20, 7, 250000, tzinfo=timezone.utc)
SPEC = parse_catalog('[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
ROLE = "arn:aws:iam::123456789012:role/dms-s3-target"


def counted(client):
    """Calls made, by operation, counted at the client (botocore's before-call event)."""
    calls = []
    client.meta.events.register("before-call", lambda model, **_: calls.append(model.name))
    return calls


def make_task(aws, s3_settings=None, instance="dms-prod", migration="full-load-and-cdc"):
    dms = aws("dms")
    arn = dms.create_replication_instance(ReplicationInstanceIdentifier=instance,
                                          ReplicationInstanceClass="dms.t3.medium")["ReplicationInstance"][
        "ReplicationInstanceArn"]
    source = dms.create_endpoint(EndpointIdentifier="aurora", EndpointType="source", EngineName="aurora-postgresql",
                                 DatabaseName="app", PostgreSQLSettings={"DatabaseName": "app", "SlotName": "dms_slot",
                                                                         "PluginName": "test_decoding"})
    target = dms.create_endpoint(EndpointIdentifier="s3", EndpointType="target", EngineName="s3",
                                 S3Settings={"BucketName": "acme-cdc", "BucketFolder": "dms",
                                             "ServiceAccessRoleArn": ROLE, **(s3_settings or {})})
    dms.create_replication_task(ReplicationTaskIdentifier="aurora-snowflake-cdc",
                                SourceEndpointArn=source["Endpoint"]["EndpointArn"],
                                TargetEndpointArn=target["Endpoint"]["EndpointArn"], ReplicationInstanceArn=arn,
                                MigrationType=migration, TableMappings='{"rules": []}')
    return dms, DmsGateway(dms, aws("cloudwatch"), aws("logs"))


def test_the_target_endpoints_s3_settings_are_read_once_and_cached(aws):
    dms, gw = make_task(aws, {"DatePartitionEnabled": True, "DatePartitionSequence": "YYYYMMDDHH",
                              "DatePartitionDelimiter": "DASH", "DatePartitionTimezone": "Asia/Seoul",
                              "CdcPath": "changes", "PreserveTransactions": True, "DataFormat": "parquet",
                              "CompressionType": "GZIP", "IncludeOpForFullLoad": True,
                              "TimestampColumnName": "DMS_TS", "CdcInsertsOnly": False})
    calls = counted(dms)
    task = gw.task("aurora-snowflake-cdc")
    assert task.migration_type == "full-load-and-cdc" and task.target_endpoint_arn and task.instance_arn
    target = gw.target(task.target_endpoint_arn)
    assert (target.bucket, target.folder, target.cdc_path) == ("acme-cdc", "dms", "changes")
    assert (target.date_partition, target.sequence, target.delimiter, target.timezone) == (
        True, "YYYYMMDDHH", "DASH", "Asia/Seoul")
    assert target.preserve_transactions and target.transactions_file
    assert (target.data_format, target.compression, target.include_op_for_full_load) == ("parquet", "GZIP", True)
    assert target.timestamp_column == "DMS_TS" and not target.cdc_inserts_only
    source = gw.source(task.source_endpoint_arn)
    assert (source.slot_name, source.database, source.plugin) == ("dms_slot", "app", "test_decoding")
    for _ in range(3):
        gw.target(task.target_endpoint_arn)
    assert calls.count("DescribeEndpoints") == 2  # one per endpoint, then from the cache


def test_defaults_are_the_service_models_when_settings_are_absent(aws):
    _, gw = make_task(aws)
    target = gw.target(gw.task("aurora-snowflake-cdc").target_endpoint_arn)
    assert (target.date_partition, target.sequence, target.delimiter) == (False, "YYYYMMDD", "SLASH")
    assert (target.data_format, target.compression, target.include_op_for_full_load) == ("csv", "NONE", False)


def test_a_deleted_endpoint_is_not_found_and_the_check_falls_back_to_the_catalog(aws):
    dms, gw = make_task(aws)
    task = gw.task("aurora-snowflake-cdc")
    dms.delete_endpoint(EndpointArn=task.target_endpoint_arn)
    with pytest.raises(NotFound, match="deleted"):
        gw.target(task.target_endpoint_arn)
    override = parse_catalog('[defaults]\ns3_bucket = "acme-cdc"\ns3_prefix = "dms"\n'
                             '[[tables]]\nname = "orders"\nsource = "public.orders"\n').tables[0]
    located = locate(override, NotFound("DMS endpoint … not found (deleted?)"))
    assert located.layout.table_prefix == "dms/public/orders/" and "not read" in located.notes[0]
    assert "dms:DescribeEndpoints" in located.notes[0]
    nothing = locate(SPEC, NotFound("gone"))
    assert nothing.layout is None
    result = checks.check_s3(Listed(nothing), SPEC, NOW)
    assert result.status is Status.UNKNOWN and "grant dms:DescribeEndpoints" in result.details[0]


def test_a_denied_describe_endpoints_is_a_gateway_error_with_the_code(aws):
    dms, gw = make_task(aws)
    stub = Stubber(dms)
    stub.add_client_error("describe_endpoints", "AccessDeniedFault", "User is not authorized to perform "
                          "dms:DescribeEndpoints", 400)
    with stub, pytest.raises(GatewayError, match="DescribeEndpoints failed: AccessDeniedFault"):
        gw.target("arn:aws:dms:us-east-1:123456789012:endpoint:GONE")


def test_the_instance_is_the_tasks_own_lower_case_and_a_moved_task_is_followed(aws):
    dms, gw = make_task(aws, instance="DMS-Prod")
    task = gw.task("aurora-snowflake-cdc")
    assert gw.instance(task.instance_arn) == "dms-prod"  # DMS stores the identifier lower-case
    spec = parse_catalog('[defaults]\ndms_instance = "DMS-PROD"\n[[tables]]\nname = "o"\nsource = "public.o"\n').tables[0]
    assert instance_for(spec, "dms-prod") == ("dms-prod", ())  # compared case-insensitively
    moved, notes = instance_for(spec, "dms-prod-2")
    assert moved == "dms-prod-2" and "task was moved, followed it" in notes[0]
    assert instance_for(SPEC, GatewayError("DescribeReplicationInstances failed: AccessDeniedFault"))[0] is None


# -- Listing every documented layout --------------------------------------------------------------

def make_layout(s3_settings):
    from bot.gateways.endpoints import s3_target

    target = s3_target({"EndpointIdentifier": "s3", "S3Settings": {"BucketName": "acme-cdc", "BucketFolder": "dms",
                                                                  **s3_settings}})
    return locate(SPEC, target).layout, target


def write(s3, layout, target, *minutes_ago, bucket="acme-cdc"):
    keys = [layout_key(layout, target, NOW - timedelta(minutes=m)) for m in minutes_ago]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"I,1\n")
    return keys


@pytest.mark.parametrize("sequence", sorted(PARTITION_SEQUENCES))
@pytest.mark.parametrize("delimiter", sorted(PARTITION_DELIMITERS))
def test_date_partitions_of_every_sequence_and_delimiter(aws, sequence, delimiter):
    s3 = aws("s3")
    s3.create_bucket(Bucket="acme-cdc")
    layout, target = make_layout({"DatePartitionEnabled": True, "DatePartitionSequence": sequence,
                                  "DatePartitionDelimiter": delimiter})
    s3.put_object(Bucket="acme-cdc", Key="dms/public/orders/LOAD00000001.csv", Body=b"")
    keys = write(s3, layout, target, 90, 25, 3)
    calls = counted(s3)
    files = S3Gateway(s3).newest_cdc_files(layout, NOW)
    assert files.newest_key == keys[-1] and files.last_hour == 2
    assert files.newest_at == cdc_time(keys[-1])
    assert all(call == "ListObjectsV2" for call in calls) and len(calls) <= 2  # two date folders at most
    check = checks.check_s3(Listed(locate(SPEC, target), files), SPEC, NOW)
    assert check.status is Status.OK and check.facts["files_landing"]


def test_the_partition_timezone_names_folders_and_files_in_local_time(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="acme-cdc")
    layout, target = make_layout({"DatePartitionEnabled": True, "DatePartitionSequence": "YYYYMMDDHH",
                                  "DatePartitionTimezone": "Asia/Seoul"})
    [key] = write(s3, layout, target, 4)
    seoul = (NOW - timedelta(minutes=4)).astimezone(ZoneInfo("Asia/Seoul"))
    assert key.startswith(f"dms/public/orders/{seoul:%Y/%m/%d/%H}/{seoul:%Y%m%d-%H%M}")
    files = S3Gateway(s3).newest_cdc_files(layout, NOW)
    assert files.newest_at == (NOW - timedelta(minutes=4)).replace(microsecond=250000) and files.last_hour == 1


def test_transaction_files_under_the_cdc_path_hold_every_tables_changes(aws):
    s3 = aws("s3")
    s3.create_bucket(Bucket="acme-cdc")
    layout, target = make_layout({"CdcPath": "changes", "PreserveTransactions": True})
    assert layout.cdc_base == "dms/changes/" and layout.shared
    keys = write(s3, layout, target, 30, 2)
    assert keys[-1].startswith("dms/changes/CDC_TXN-2026")
    files = S3Gateway(s3).newest_cdc_files(layout, NOW)
    assert files.newest_key == keys[-1] and files.last_hour == 2
    check = checks.check_s3(Listed(locate(SPEC, target), files), SPEC, NOW)
    assert check.status is Status.OK and any("every table's changes" in d for d in check.details)


@pytest.mark.parametrize("settings,extension", [({"DataFormat": "parquet"}, ".parquet"),
                                                ({"CompressionType": "GZIP"}, ".csv.gz"),
                                                ({"DataFormat": "parquet", "CompressionType": "GZIP"}, ".parquet.gz")])
def test_parquet_and_gzip_names(aws, settings, extension):
    s3 = aws("s3")
    s3.create_bucket(Bucket="acme-cdc")
    layout, target = make_layout(settings)
    [key] = write(s3, layout, target, 6)
    assert key.endswith(extension)
    assert S3Gateway(s3).newest_cdc_files(layout, NOW).newest_key == key


def test_the_flat_layouts_listing_misses_date_folders(aws):
    """Why the layout is read: date folders (SLASH) sort before a flat StartAfter key, so a listing made
    for the runbook's flat layout finds nothing although files land."""
    s3 = aws("s3")
    s3.create_bucket(Bucket="acme-cdc")
    layout, target = make_layout({"DatePartitionEnabled": True})
    write(s3, layout, target, 3)
    assert S3Gateway(s3).recent_cdc_files("acme-cdc", "dms/public/orders/", NOW).newest_key is None
    assert S3Gateway(s3).newest_cdc_files(layout, NOW).newest_key is not None


@pytest.fixture(scope="module")
def old_files(moto_server):
    """100,000 old files of one table, put straight into moto's backend (through HTTP it would take
    minutes): flat-named CDC files and date folders of 2020, and full-load files."""
    from moto.s3.models import s3_backends

    return s3_backends, 100_000


def test_a_table_with_100000_old_files_costs_the_same(aws, old_files):
    backends, count = old_files
    s3 = aws("s3")
    for bucket in ("acme-cdc", "acme-small"):
        s3.create_bucket(Bucket=bucket)
    backend = backends["123456789012"]["global"]
    for i in range(count):
        day = f"{i % 28 + 1:02d}"
        key = (f"dms/public/orders/2020/03/{day}/202003{day}-{i % 86400:06d}000.csv" if i % 3 == 0 else
               f"dms/public/orders/LOAD{i:08X}.csv" if i % 3 == 1 else
               f"dms/public/orders/202001{day}-{i % 86400:06d}000.csv")
        backend.put_object("acme-cdc", key, b"")
    for settings in ({}, {"DatePartitionEnabled": True}, {"DatePartitionEnabled": True, "DatePartitionSequence": "YYYYMM"}):
        layout, target = make_layout(settings)
        cost = []
        for bucket in ("acme-cdc", "acme-small"):
            write(s3, layout, target, 40, 3, bucket=bucket)
            calls = counted(s3)
            found = S3Gateway(s3).newest_cdc_files(type(layout)(**{**layout.__dict__, "bucket": bucket}), NOW)
            assert found.last_hour == 2
            cost.append(len(calls))
        assert cost[0] == cost[1] <= 2, settings
