"""The maintenance report's findings from real parts: vacuum statistics from the machine's PostgreSQL,
lifecycle rules from moto's S3, replication-instance metrics from moto's CloudWatch."""
import json
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone

import boto3
import psycopg
import pytest
from moto import mock_aws

from bot.catalog import CatalogError, Maintenance, parse_catalog
from bot.gateways.aurora import AuroraGateway, Slot, VacuumStats
from bot.gateways.dms import DmsGateway
from bot.gateways.s3 import S3Gateway
from bot.maintenance import Topic
from bot.maintenance.findings import instance_finding, lifecycle_finding, vacuum_finding, wal_findings
from bot.models import Status
from syncbot.sandbox.pipeline import CATALOG_TOML

NOW = datetime.now(timezone.utc).replace(microsecond=0)
LIMITS = Maintenance()
GiB = 1024**3

CATALOG = """
[[tables]]
name = "bloated"
source = "maint.bloated"

[[tables]]
name = "tidy"
source = "maint.tidy"

[[tables]]
name = "halfdead"
source = "maint.halfdead"

[[tables]]
name = "ghost"
source = "maint.ghost"
"""


# -- Vacuum, against the real PostgreSQL ----------------------------------------------------------

@pytest.fixture(scope="module")
def bloated_db(pg_dsn):
    """maint.bloated: 8 000 of 10 000 rows deleted; maint.halfdead: 3 000 of 10 000; maint.tidy: vacuumed.
    Autovacuum is off for them so it cannot tidy up behind the test's back."""
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS maint CASCADE")
        conn.execute("CREATE SCHEMA maint")
        for table, deleted in (("bloated", 8000), ("halfdead", 3000), ("tidy", 0)):
            conn.execute(f"CREATE TABLE maint.{table} (id int, pad text) WITH (autovacuum_enabled = false)")
            conn.execute(f"INSERT INTO maint.{table} SELECT g, repeat('x', 100) FROM generate_series(1, 10000) g")
            conn.execute(f"DELETE FROM maint.{table} WHERE id <= {deleted}")
        # PostgreSQL 15+ keeps a backend's table counters until it flushes them (at most once a second,
        # when idle): force it, before VACUUM sets the tidy table's counts (or they would add up).
        if conn.execute("SELECT current_setting('server_version_num')::int").fetchone()[0] >= 150000:
            conn.execute("SELECT pg_stat_force_next_flush()")
        conn.execute("VACUUM maint.tidy")
    gateway = AuroraGateway(pg_dsn)
    sources = ["maint.bloated", "maint.halfdead", "maint.tidy"]
    for _ in range(50):  # the flush lands when that session goes idle: poll briefly, never sleep blindly
        stats = gateway.vacuum_stats(sources)
        if len(stats) == 3 and stats["maint.bloated"].dead_tuples == 8000 and stats["maint.tidy"].last_vacuum:
            break
        time.sleep(0.1)
    return pg_dsn


def test_vacuum_statistics_are_read_from_pg_stat_user_tables(bloated_db):
    stats = AuroraGateway(bloated_db).vacuum_stats(["maint.bloated", "maint.tidy", "maint.ghost"])
    assert set(stats) == {"maint.bloated", "maint.tidy"}  # a missing table is simply absent
    bloated, tidy = stats["maint.bloated"], stats["maint.tidy"]
    assert (bloated.dead_tuples, bloated.live_tuples) == (8000, 2000)
    assert bloated.last_vacuumed is None and bloated.total_bytes > 0
    assert tidy.dead_tuples == 0 and tidy.last_vacuum is not None and tidy.last_vacuumed == tidy.last_vacuum


def test_vacuum_findings_for_a_bloated_table(bloated_db):
    catalog = parse_catalog(CATALOG)
    stats = AuroraGateway(bloated_db).vacuum_stats([s.source for s in catalog.tables])
    found = {spec.name: vacuum_finding(spec, stats.get(spec.source), NOW, catalog.maintenance)
             for spec in catalog.tables}

    bloated = found["bloated"]
    assert bloated.status is Status.FAILING and bloated.topic is Topic.VACUUM
    assert "8,000 dead / 2,000 live tuples (400% dead)" in bloated.summary and "never vacuumed" in bloated.summary
    assert "full load" in bloated.summary
    assert bloated.code.splitlines() == ["VACUUM (ANALYZE) maint.bloated;",
                                         "ALTER TABLE maint.bloated SET (autovacuum_vacuum_scale_factor = 0.05);"]

    half = found["halfdead"]
    assert half.status is Status.WARNING and "(43% dead)" in half.summary
    assert half.code.startswith("VACUUM (ANALYZE) maint.halfdead;")

    tidy = found["tidy"]
    assert tidy.status is Status.OK and tidy.fix == "" and "0 dead / 10,000 live" in tidy.summary
    assert "last vacuumed" in tidy.summary

    ghost = found["ghost"]
    assert ghost.status is Status.UNKNOWN and "not in pg_stat_user_tables" in ghost.summary
    assert "`source`" in ghost.fix


def test_a_table_with_dead_tuples_left_too_long_is_a_warning():
    spec = parse_catalog(CATALOG).tables[1]
    stale = VacuumStats("maint", "tidy", 100_000, 5_000, None, NOW - timedelta(days=9))
    finding = vacuum_finding(spec, stale, NOW, LIMITS)
    assert finding.status is Status.WARNING and "more than 7 days" in finding.summary
    assert finding.code == "VACUUM (ANALYZE) maint.tidy;"
    # The same table, vacuumed yesterday, is fine; and a small table never matters.
    assert vacuum_finding(spec, replace(stale, last_autovacuum=NOW - timedelta(days=1)), NOW, LIMITS).status is Status.OK
    assert vacuum_finding(spec, VacuumStats("maint", "tidy", 10, 900, None, None), NOW, LIMITS).status is Status.OK


# -- WAL retention ----------------------------------------------------------------------------------

def slot(**kw):
    return Slot(**{"name": "dms_slot_1", "plugin": "test_decoding", "active": True, "wal_status": "reserved",
                   "retained_bytes": 200 * 1024**2, **kw})


@pytest.mark.parametrize("given, status, fix_says, code", [
    (slot(), Status.OK, "", ""),
    (slot(retained_bytes=3 * GiB), Status.WARNING, "scale the replication instance or limit the task's scope", ""),
    (slot(active=False), Status.WARNING, "Resume the DMS task", "SELECT pg_drop_replication_slot('dms_slot_1');"),
    (slot(wal_status="unreserved"), Status.WARNING, "max_slot_wal_keep_size", ""),
    (slot(wal_status="lost", active=False), Status.FAILING, "Re-syncing a Table",
     "SELECT pg_drop_replication_slot('dms_slot_1');"),
])
def test_each_slot_against_the_configured_wal_limit(given, status, fix_says, code):
    [finding] = wal_findings([given], Maintenance(wal_limit_gb=2))
    assert finding.status is status and finding.subject == "dms_slot_1" and finding.table is None
    assert "limit 2 GiB" in finding.summary
    assert fix_says in finding.fix and finding.code == code


def test_no_logical_slot_on_the_real_server_is_a_warning(pg_dsn):
    # The test server runs wal_level=replica: no logical slot can exist, as on an Aurora without CDC.
    [finding] = wal_findings(AuroraGateway(pg_dsn).replication_slots(), LIMITS)
    assert finding.status is Status.WARNING and "rds.logical_replication" in finding.fix


# -- S3 clean-up, against moto ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def aws():
    """One moto for the module: S3 with the CDC bucket, CloudWatch with two instances' last hours."""
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="acme-cdc")
        cloudwatch = boto3.client("cloudwatch", region_name="us-east-1")
        put_instance_metrics(cloudwatch, "dms-hot", {**COOL, "CPUUtilization": [97, 93, 60],
                                                     "FreeableMemory": [300 * 1024**2, GiB, GiB]})
        put_instance_metrics(cloudwatch, "dms-cool", COOL)
        yield s3, DmsGateway(boto3.client("dms", region_name="us-east-1"), cloudwatch,
                                boto3.client("logs", region_name="us-east-1")), cloudwatch


@pytest.fixture
def s3(aws):
    client = aws[0]
    client.delete_bucket_lifecycle(Bucket="acme-cdc")  # each test starts without a configuration
    return client


# The tables whose CDC files the sandbox bucket holds, where its target endpoint puts them (the sandbox's
# catalog leaves bucket and prefix to the endpoint: bot.diagnostics.layout.resolved reads them).
SANDBOX_TABLES = [replace(spec, s3_bucket="acme-cdc", s3_prefix="dms") for spec in parse_catalog(CATALOG_TOML).tables]


def s3_finding(client):
    rules = S3Gateway(client).lifecycle_rules("acme-cdc")
    return lifecycle_finding("acme-cdc", "dms", list(SANDBOX_TABLES), rules, LIMITS)


def put_rules(client, *rules):
    client.put_bucket_lifecycle_configuration(Bucket="acme-cdc", LifecycleConfiguration={"Rules": list(rules)})


def test_bucket_without_lifecycle_configuration_gets_the_rule_to_add(s3):
    assert S3Gateway(s3).lifecycle_rules("acme-cdc") == []
    finding = s3_finding(s3)
    assert finding.status is Status.WARNING and finding.subject == "s3://acme-cdc/dms/"
    assert "no lifecycle configuration" in finding.summary and "replaces the whole configuration" in finding.fix
    rule = json.loads(finding.code)
    assert rule == {"ID": "syncbot-expire-cdc", "Status": "Enabled", "Filter": {"Prefix": "dms/"},
                    "Expiration": {"Days": 14}}
    put_rules(s3, rule)  # the suggested rule is one S3 accepts, and it satisfies the check
    assert s3_finding(s3).status is Status.OK


def test_matching_rule_is_ok(s3):
    put_rules(s3, {"ID": "expire-cdc", "Status": "Enabled", "Filter": {"Prefix": "dms/"}, "Expiration": {"Days": 30}},
              {"ID": "archive-logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"},
               "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]})
    finding = s3_finding(s3)
    assert finding.status is Status.OK and "'expire-cdc'" in finding.summary and finding.fix == ""


def test_whole_bucket_rule_covers_the_prefix(s3):
    put_rules(s3, {"ID": "everything", "Status": "Enabled", "Filter": {}, "Expiration": {"Days": 60}})
    assert s3_finding(s3).status is Status.OK


@pytest.mark.parametrize("rule, why", [
    ({"ID": "off", "Status": "Disabled", "Filter": {"Prefix": "dms/"}, "Expiration": {"Days": 14}}, "disabled"),
    ({"ID": "logs", "Status": "Enabled", "Filter": {"Prefix": "logs/"}, "Expiration": {"Days": 14}}, "outside"),
    ({"ID": "tagged", "Status": "Enabled", "Filter": {"And": {"Prefix": "dms/", "Tags": [{"Key": "k", "Value": "v"}]}},
      "Expiration": {"Days": 14}}, "tags"),
    ({"ID": "cold", "Status": "Enabled", "Filter": {"Prefix": "dms/"},
      "Transitions": [{"Days": 30, "StorageClass": "GLACIER"}]}, "does not expire"),
])
def test_non_matching_rule_is_a_warning_that_says_why(s3, rule, why):
    put_rules(s3, rule)
    finding = s3_finding(s3)
    assert finding.status is Status.WARNING and "no enabled lifecycle rule expires" in finding.summary
    assert why in finding.details[0] and json.loads(finding.code)["Filter"] == {"Prefix": "dms/"}


def test_rule_for_one_table_names_the_others(s3):
    put_rules(s3, {"ID": "orders-only", "Status": "Enabled", "Filter": {"Prefix": "dms/public/orders/"},
                   "Expiration": {"Days": 14}})
    finding = s3_finding(s3)
    assert finding.status is Status.WARNING and finding.summary.endswith("not those of customers, payments")


def test_expiring_before_a_refresh_could_reload_is_a_warning(s3):
    put_rules(s3, {"ID": "hasty", "Status": "Enabled", "Filter": {"Prefix": "dms/"}, "Expiration": {"Days": 3}})
    finding = s3_finding(s3)
    assert finding.status is Status.WARNING and "hasty (3 days)" in finding.summary and "at least 7" in finding.fix


# -- The replication instance, against moto's CloudWatch --------------------------------------------

def put_instance_metrics(client, instance, values):
    client.put_metric_data(Namespace="AWS/DMS", MetricData=[
        {"MetricName": metric, "Dimensions": [{"Name": "ReplicationInstanceIdentifier", "Value": instance}],
         "Timestamp": NOW - timedelta(hours=h, minutes=20), "Value": value}
        for metric, series in values.items() for h, value in enumerate(series)])


COOL = {"CPUUtilization": [22, 30, 25], "FreeableMemory": [1.5 * GiB] * 3, "FreeStorageSpace": [40 * GiB] * 3,
        "SwapUsage": [0, 0, 0]}


@pytest.fixture
def dms(aws):
    return aws[1]


def test_instance_metrics_in_one_call_by_instance_identifier(aws, dms):
    sent = []

    def seen(params, **_):
        sent.append(params)

    events = aws[2].meta.events
    events.register("provide-client-params.cloudwatch.GetMetricData", seen)
    try:
        series = dms.instance_metrics("dms-hot", NOW)
    finally:
        events.unregister("provide-client-params.cloudwatch.GetMetricData", seen)
    [params] = sent
    assert params["EndTime"] - params["StartTime"] == timedelta(hours=24)
    stats = {q["MetricStat"]["Metric"]["MetricName"]: q["MetricStat"] for q in params["MetricDataQueries"]}
    assert {n: s["Stat"] for n, s in stats.items()} == {"CPUUtilization": "Average", "FreeableMemory": "Minimum",
                                                        "FreeStorageSpace": "Minimum", "SwapUsage": "Maximum"}
    for stat in stats.values():
        assert stat["Metric"]["Namespace"] == "AWS/DMS"
        assert stat["Metric"]["Dimensions"] == [{"Name": "ReplicationInstanceIdentifier", "Value": "dms-hot"}]
    assert [v for _, v in series["CPUUtilization"].points] == [60, 93, 97]  # oldest first


def test_hot_instance_gets_the_runbook_advice(dms):
    hot = instance_finding("dms-hot", dms.instance_metrics("dms-hot", NOW))
    assert hot.status is Status.FAILING and "CPU hourly average up to 97%" in hot.summary
    assert "freeable memory down to 300 MiB" in hot.summary
    assert "Scale the replication instance" in hot.fix and "limit the task's scope" in hot.fix
    assert "STOPPED_DUE_TO_LOW_MEMORY" in hot.fix and "AllocatedStorage" not in hot.fix
    cool = instance_finding("dms-cool", dms.instance_metrics("dms-cool", NOW))
    assert cool.status is Status.OK and cool.fix == ""


def test_unknown_instance_name_has_no_datapoints(dms):
    finding = instance_finding("dms-typo", dms.instance_metrics("dms-typo", NOW))
    assert finding.status is Status.UNKNOWN and "`dms_instance`" in finding.fix


def test_low_storage_asks_for_more_storage():
    from bot.gateways.dms import Series

    series = {"FreeStorageSpace": Series("FreeStorageSpace", ((NOW, 1.5 * GiB),))}
    finding = instance_finding("dms-prod", series)
    assert finding.status is Status.FAILING and "AllocatedStorage" in finding.fix
    assert "STOPPED_DUE_TO_LOW_DISK" in finding.fix


# -- [maintenance] in the catalog -------------------------------------------------------------------

MINIMAL = '[[tables]]\nname = "orders"\nsource = "public.orders"\n'


def test_maintenance_section_is_validated_and_defaulted():
    catalog = parse_catalog(MINIMAL + '\n[maintenance]\nchannel = "C0MAINT01"\nschedule = "0 8 * * MON"\n'
                                      'wal_limit_gb = 25\n')
    m = catalog.maintenance
    assert (m.channel, m.schedule, m.wal_limit_gb, m.dead_tuple_ratio, m.scheduled) == (
        "C0MAINT01", "0 8 * * MON", 25.0, 0.2, True)
    assert parse_catalog(MINIMAL).maintenance == Maintenance() and not Maintenance().scheduled


@pytest.mark.parametrize("section, message", [
    ('channel = "#maintenance"\nschedule = "0 8 * * MON"', r"line 6: maintenance channel '#maintenance' is not a Slack"),
    ('channel = "C0MAINT01"\nschedule = "every monday"', r"line 7: maintenance schedule 'every monday' is not a cron"),
    ('channel = "C0MAINT01"\nschedule = "*/5 * * * *"', r"line 7: .* fires more often than hourly"),
    ('channel = "C0MAINT01"', r"line 6: \[maintenance\] `channel` needs a `schedule` too"),
    ('channel = "C0MAINT01"\nschedule = "@daily"\nwal_limit_gb = -1', r"line 8: `wal_limit_gb` must be a number"),
    ('channel = "C0MAINT01"\nschedule = "@daily"\nvacuum_age_days = 2.5', r"line 8: `vacuum_age_days` must be a whole"),
    ('chanel = "C0MAINT01"', r"line 6: unknown key `chanel` in \[maintenance\]"),
])
def test_bad_maintenance_section_names_its_line(section, message):
    with pytest.raises(CatalogError, match=message):
        parse_catalog(MINIMAL + "\n[maintenance]\n" + section + "\n")
