"""DMS, CloudWatch and S3 gateways against moto, with the request parameters checked explicitly
where moto is more forgiving than AWS."""
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from moto import mock_aws

from bot.gateways import NotFound
from bot.gateways.dms import DmsGateway
from bot.gateways.s3 import S3Gateway, cdc_name, cdc_time
from syncbot.sandbox.seams import count_aws

NOW = datetime.now(timezone.utc).replace(microsecond=0)


def test_latency_is_queried_by_instance_name_and_task_resource_id(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    sent = []
    sandbox.cloudwatch_client.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData", lambda params, **_: sent.append(params))
    gw = DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client)
    task = gw.task("aurora-snowflake-cdc")
    assert task.identifier == "aurora-snowflake-cdc" and task.resource_id != task.identifier
    assert len(task.resource_id) == 38 and task.resource_id.isupper()

    series = gw.cdc_latency_many([("dms-prod", task.resource_id)], datetime.now(timezone.utc))[
        ("dms-prod", task.resource_id)]
    dims = sent[0]["MetricDataQueries"][0]["MetricStat"]["Metric"]["Dimensions"]
    assert dims == [{"Name": "ReplicationInstanceIdentifier", "Value": "dms-prod"},
                    {"Name": "ReplicationTaskIdentifier", "Value": task.resource_id}]
    assert [q["MetricStat"]["Metric"]["MetricName"] for q in sent[0]["MetricDataQueries"]] == [
        "CDCLatencySource", "CDCLatencyTarget"]
    assert len(sent) == 1  # both series in one GetMetricData call
    assert len(series["CDCLatencySource"].points) == 12
    # The name the task was given is not a dimension value AWS uses: no data under it.
    target = ("dms-prod", "aurora-snowflake-cdc")
    by_name = gw.cdc_latency_many([target], datetime.now(timezone.utc))[target]
    assert by_name["CDCLatencySource"].points == ()


def test_unknown_task_is_not_found(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    with pytest.raises(NotFound, match="no-such-task"):
        DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client).task("no-such-task")


def test_table_statistics_walk_every_page(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    model = sandbox.dms_task()
    model.table_statistics = [{"SchemaName": "public", "TableName": f"t{i}", "TableState": "Table completed"}
                              for i in range(1203)]
    gw = DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client)
    before = sum(sandbox.calls.values())
    stats = gw.table_statistics(sandbox.task_arn)
    assert len(stats) == 1203 and stats[("public", "t1202")].state == "Table completed"
    assert sum(sandbox.calls.values()) - before == 3  # 500 a page


def test_failure_fields_are_read(make_sandbox):
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    task = DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client).task("aurora-snowflake-cdc")
    assert (task.status, task.stop_reason, task.tables_errored) == ("failed", "FATAL_ERROR", 1)
    assert "Connection timed out" in task.last_failure_message


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket="acme-cdc")
        yield client


def put(client, minutes_ago, prefix="dms/public/orders/"):
    stamp = NOW - timedelta(minutes=minutes_ago)
    client.put_object(Bucket="acme-cdc", Key=prefix + stamp.strftime("%Y%m%d-%H%M%S") + "123.csv", Body=b"x")


def test_cdc_file_names_carry_their_time():
    assert cdc_time("dms/public/orders/20261126-031502123.csv") == datetime(2026, 11, 26, 3, 15, 2, 123000,
                                                                            tzinfo=timezone.utc)
    assert cdc_time("dms/public/orders/LOAD00000001.csv") is None
    assert cdc_time("dms/public/orders/20261340-031502123.csv") is None  # digits, but month 13
    written = datetime(2026, 11, 26, 3, 15, 2, 123456, tzinfo=timezone.utc)
    assert cdc_name(written) == "20261126-031502123.csv"
    assert cdc_time("dms/public/orders/" + cdc_name(written)) == written.replace(microsecond=123000)


def test_aws_clients_read_times_as_botocore_does():
    """The bot's sessions read ISO times directly (bot.services.aws_timestamp); the answers must be
    the ones botocore's default parser gives, zone included, and anything else goes to that parser."""
    from botocore.utils import parse_timestamp

    from bot.services import aws_timestamp

    for value in ("2026-11-29T03:04:05.000Z", "2026-11-29T03:04:05Z", "2026-11-29T03:04:05.123456+02:00",
                  "2026-11-29T03:04:05", "Sun, 29 Nov 2026 03:04:05 GMT", 1795921445, 1795921445.5):
        assert aws_timestamp(value) == parse_timestamp(value), value
        assert (aws_timestamp(value).tzinfo is None) == (parse_timestamp(value).tzinfo is None), value


def test_listing_times_arrive_as_aware_datetimes(s3):
    """Through a real client of the bot's session (moto): LastModified is a UTC-aware datetime."""
    from bot.services import aws_session

    client = aws_session("us-east-1", aws_access_key_id="x", aws_secret_access_key="y").client("s3")
    client.create_bucket(Bucket="times")
    client.put_object(Bucket="times", Key="a", Body=b"x")
    [obj] = client.list_objects_v2(Bucket="times")["Contents"]
    assert obj["LastModified"].utcoffset() == timedelta(0)
    assert abs(obj["LastModified"] - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_recent_files_counted_and_newest_found(s3):
    for minutes in (200, 50, 30, 5):
        put(s3, minutes)
    put(s3, 1, prefix="dms/public/orders_archive/")  # a neighbouring prefix must not count
    files = S3Gateway(s3).recent_cdc_files("acme-cdc", "dms/public/orders/", NOW)
    assert files.last_hour == 3 and files.newest_key.endswith(
        (NOW - timedelta(minutes=5)).strftime("%Y%m%d-%H%M%S") + "123.csv")


def test_window_widens_when_nothing_is_recent(s3):
    put(s3, 300)
    calls = count_aws(s3)
    files = S3Gateway(s3).recent_cdc_files("acme-cdc", "dms/public/orders/", NOW)
    assert files.last_hour == 0 and files.searched == timedelta(hours=6)
    assert calls == {("s3", "ListObjectsV2"): 2}


def test_listing_cost_does_not_grow_with_old_files(s3):
    for i in range(1001):  # two pages of old files, beyond every window
        s3.put_object(Bucket="acme-cdc", Key=f"dms/public/orders/2020{i:04d}-000000000.csv", Body=b"")
    for i in range(1001):  # and full-load files, which sort after every time-named file
        s3.put_object(Bucket="acme-cdc", Key=f"dms/public/orders/LOAD{i:08d}.csv", Body=b"")
    put(s3, 3)
    calls = count_aws(s3)
    files = S3Gateway(s3).recent_cdc_files("acme-cdc", "dms/public/orders/", NOW)
    assert files.last_hour == 1 and calls == {("s3", "ListObjectsV2"): 1}


def test_missing_bucket_is_not_found(s3):
    with pytest.raises(NotFound, match="no-bucket"):
        S3Gateway(s3).recent_cdc_files("no-bucket", "dms/x/y/", NOW)


def test_latency_of_many_tasks_in_one_call(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    sent = []
    sandbox.cloudwatch_client.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData", lambda params, **_: sent.append(params))
    now = datetime.now(timezone.utc)
    sandbox.cloudwatch_client.put_metric_data(Namespace="AWS/DMS", MetricData=[{
        "MetricName": "CDCLatencyTarget", "Value": 777.0, "Unit": "Seconds", "Timestamp": now - timedelta(minutes=3),
        "Dimensions": [{"Name": "ReplicationInstanceIdentifier", "Value": "dms-other"},
                       {"Name": "ReplicationTaskIdentifier", "Value": "OTHERTASKRESOURCEID"}]}])
    gw = DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client)
    own = gw.task("aurora-snowflake-cdc").resource_id
    targets = [("dms-prod", own), ("dms-other", "OTHERTASKRESOURCEID"), ("dms-prod", "NODATA")]
    series = gw.cdc_latency_many(targets, now)
    assert len(sent) == 1 and len(sent[0]["MetricDataQueries"]) == 6
    assert len(series[("dms-prod", own)]["CDCLatencySource"].points) == 12
    assert series[("dms-other", "OTHERTASKRESOURCEID")]["CDCLatencyTarget"].latest == 777.0
    assert series[("dms-other", "OTHERTASKRESOURCEID")]["CDCLatencySource"].points == ()
    assert series[("dms-prod", "NODATA")]["CDCLatencyTarget"].points == ()
    assert series[("dms-prod", own)] == gw.cdc_latency_many([("dms-prod", own)], now)[("dms-prod", own)]


def test_latency_calls_stay_within_the_query_limit(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    sent = []
    sandbox.cloudwatch_client.meta.events.register(
        "provide-client-params.cloudwatch.GetMetricData", lambda params, **_: sent.append(params))
    targets = [("dms-prod", f"TASK{i:04d}") for i in range(251)]
    series = DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client).cdc_latency_many(
        targets, datetime.now(timezone.utc))
    assert [len(p["MetricDataQueries"]) for p in sent] == [500, 2] and len(series) == 251
    ids = [q["Id"] for p in sent for q in p["MetricDataQueries"]]
    assert len(set(ids[:500])) == 500 and all(i[0].islower() for i in ids)


def test_aws_region_alone_names_the_region(monkeypatch):
    """README's AWS_REGION is enough: boto3 alone reads only AWS_DEFAULT_REGION (NoRegionError)."""
    from bot.services import aws_session

    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert aws_session().client("dms", aws_access_key_id="x", aws_secret_access_key="y").meta.region_name == "eu-west-1"
