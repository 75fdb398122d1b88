"""What the maintenance report reads, for the sandbox: a day of replication-instance metrics in moto's
CloudWatch, the bucket's lifecycle rule in moto's S3, and pg_stat_user_tables for the scripted Aurora.
The instance runs hot where the runbook would blame it: CPU and swap when the task stalls, memory when
it failed out of memory."""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.gateways.aurora import VacuumStats

_MiB, _GiB = 1024**2, 1024**3
HEALTHY = {"CPUUtilization": (18.0, 34.0), "FreeableMemory": (1.6 * _GiB, 1.4 * _GiB),
           "FreeStorageSpace": (41 * _GiB, 40 * _GiB), "SwapUsage": (0.0, 0.0)}
PROFILES = {
    "stalled": {**HEALTHY, "CPUUtilization": (71.0, 94.0), "SwapUsage": (40 * _MiB, 310 * _MiB)},
    "dms-failed": {**HEALTHY, "FreeableMemory": (700 * _MiB, 180 * _MiB), "SwapUsage": (300 * _MiB, 1.3 * _GiB)},
}
RULE = {"ID": "expire-cdc", "Status": "Enabled", "Filter": {"Prefix": "dms/"}, "Expiration": {"Days": 14}}


def seed(sandbox: Any) -> None:
    """Idempotent enough for one sandbox: metrics for every catalog instance, one rule per bucket."""
    profile = PROFILES.get(sandbox.scenario.name, HEALTHY)
    from .pipeline import BUCKET, INSTANCE

    for instance in (INSTANCE,):
        sandbox.cloudwatch_client.put_metric_data(Namespace="AWS/DMS", MetricData=[
            {"MetricName": metric, "Dimensions": [{"Name": "ReplicationInstanceIdentifier", "Value": instance}],
             "Timestamp": sandbox.now - timedelta(hours=hour, minutes=10), "Value": _ramp(start, end, hour),
             "Unit": "Percent" if metric == "CPUUtilization" else "Bytes"}
            for metric, (start, end) in profile.items() for hour in range(24)])
    for bucket in (BUCKET,):
        sandbox.s3_client.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [RULE]})


def scripted_vacuum(sources: list[str], now: datetime) -> dict[str, VacuumStats]:
    """Well-kept tables: a little dead weight, autovacuumed a few hours ago."""
    out = {}
    for i, source in enumerate(sources):
        schema, table = source.split(".")
        out[source] = VacuumStats(schema, table, live_tuples=50_000 * (i + 1), dead_tuples=420 * (i + 1),
                                  last_vacuum=None, last_autovacuum=now - timedelta(hours=3 + i),
                                  total_bytes=(12 + 4 * i) * _MiB)
    return out


def _ramp(start: float, end: float, hours_ago: int) -> float:
    """From `start` a day ago to `end` now."""
    return start + (end - start) * (23 - hours_ago) / 23
