"""Gathers what the maintenance findings need: every backend call at once, under one deadline. A call
that fails or is late turns its own findings "unknown" with the reason; the rest of the report stands."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ..catalog import Catalog, TableSpec
from ..deadline import Unanswered, answer
from ..gateways import Gateways
from ..models import Status, utcnow
from . import findings as f
from .report import Finding, MaintenanceReport, Topic


def maintenance_report(bot: Any, now: datetime | None = None) -> MaintenanceReport:
    """The report for the bot's catalog and backends (`bot` is the SyncBot facade)."""
    return collect(bot.gateways, bot.catalog, bot.diagnoser.timeout, now)


def collect(gateways: Gateways, catalog: Catalog, timeout: float = 8.0,
            now: datetime | None = None) -> MaintenanceReport:
    now = now or utcnow()
    started = time.monotonic()
    deadline = started + timeout
    limits = catalog.maintenance
    groups: dict[tuple[str, str], list[TableSpec]] = {}
    for spec in catalog.tables:
        groups.setdefault((spec.s3_bucket, spec.s3_prefix), []).append(spec)
    instances = list(dict.fromkeys(spec.dms_instance for spec in catalog.tables))
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="syncbot-maintenance")
    try:
        vacuum = pool.submit(gateways.aurora.vacuum_stats, [spec.source for spec in catalog.tables])
        slots = pool.submit(gateways.aurora.replication_slots)
        metrics = {name: pool.submit(gateways.dms.instance_metrics, name, now) for name in instances}
        lifecycles = {bucket: pool.submit(gateways.s3.lifecycle_rules, bucket)
                      for bucket in dict.fromkeys(bucket for bucket, _ in groups)}

        found: list[Finding] = []
        try:
            stats = answer(vacuum, deadline, "Aurora", timeout)
            found += [f.vacuum_finding(spec, stats.get(spec.source), now, limits) for spec in catalog.tables]
        except Unanswered as exc:
            found += [_unknown(Topic.VACUUM, spec.source, exc, spec.name) for spec in catalog.tables]
        try:
            found += f.wal_findings(answer(slots, deadline, "Aurora", timeout), limits)
        except Unanswered as exc:
            found.append(_unknown(Topic.WAL, "logical replication slots", exc))
        for name, future in metrics.items():
            try:
                found.append(f.instance_finding(name, answer(future, deadline, "CloudWatch", timeout)))
            except Unanswered as exc:
                found.append(_unknown(Topic.INSTANCE, name, exc))
        for (bucket, prefix), specs in groups.items():
            try:
                rules = answer(lifecycles[bucket], deadline, "S3", timeout)
                found.append(f.lifecycle_finding(bucket, prefix, specs, rules, limits))
            except Unanswered as exc:
                found.append(_unknown(Topic.S3, f.s3_subject(bucket, prefix), exc))
    finally:
        # A backend that never answers must not hold the report (or the process) back.
        pool.shutdown(wait=False, cancel_futures=True)
    return MaintenanceReport(tuple(found), now, int((time.monotonic() - started) * 1000))


def _unknown(topic: Topic, subject: str, reason: Unanswered, table: str | None = None) -> Finding:
    return Finding(topic, subject, Status.UNKNOWN, f"unknown: {reason}", table=table)
