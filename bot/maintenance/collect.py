"""Gathers what the maintenance findings need: every backend call at once, under one deadline. A call
that fails or is late turns its own findings "unknown" with the reason; the rest of the report stands."""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from datetime import datetime
from typing import Any

from ..catalog import Catalog, TableSpec
from ..gateways import Gateways
from ..models import utcnow
from ..gateways import GatewayError
from ..models import Status
from . import findings as f
from .report import Finding, MaintenanceReport, Topic

log = logging.getLogger(__name__)


class _Unavailable(Exception):
    """A backend call that gave no answer; the message says why, fit to show a user."""


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
            stats = _wait(vacuum, deadline, "Aurora", timeout)
            found += [f.vacuum_finding(spec, stats.get(spec.source), now, limits) for spec in catalog.tables]
        except _Unavailable as exc:
            found += [_unknown(Topic.VACUUM, spec.source, exc, spec.name) for spec in catalog.tables]
        try:
            found += f.wal_findings(_wait(slots, deadline, "Aurora", timeout), limits)
        except _Unavailable as exc:
            found.append(_unknown(Topic.WAL, "logical replication slots", exc))
        for name, future in metrics.items():
            try:
                found.append(f.instance_finding(name, _wait(future, deadline, "CloudWatch", timeout)))
            except _Unavailable as exc:
                found.append(_unknown(Topic.INSTANCE, name, exc))
        for (bucket, prefix), specs in groups.items():
            try:
                rules = _wait(lifecycles[bucket], deadline, "S3", timeout)
                found.append(f.lifecycle_finding(bucket, prefix, specs, rules, limits))
            except _Unavailable as exc:
                found.append(_unknown(Topic.S3, f.s3_subject(bucket, prefix), exc))
    finally:
        # A backend that never answers must not hold the report (or the process) back.
        pool.shutdown(wait=False, cancel_futures=True)
    return MaintenanceReport(tuple(found), now, int((time.monotonic() - started) * 1000))


def _unknown(topic: Topic, subject: str, reason: _Unavailable, table: str | None = None) -> Finding:
    return Finding(topic, subject, Status.UNKNOWN, f"unknown: {reason}", table=table)


def _wait(future: Future, deadline: float, backend: str, timeout: float) -> Any:
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        raise _Unavailable(f"{backend} did not answer within {timeout:g}s") from None
    except GatewayError as exc:
        raise _Unavailable(f"{backend}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - one broken backend must not sink the whole report
        ref = uuid.uuid4().hex[:8]
        log.error("maintenance call to %s failed unexpectedly (ref %s)", backend, ref, exc_info=exc)
        raise _Unavailable(f"{backend} failed unexpectedly ({type(exc).__name__}, ref {ref})") from None
