"""Gathers what the maintenance findings need: every backend call at once, under one deadline. A call
that fails or is late turns its own findings "unknown" with the reason; the rest of the report stands."""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from ..catalog import Catalog, TableSpec
from ..deadline import Unanswered, answer
from ..diagnostics.layout import instance_for, resolved
from ..diagnostics.slots import claim
from ..gateways import GatewayError, Gateways
from ..gateways.dms import TaskInfo
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
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="syncbot-maintenance")
    try:
        vacuum = pool.submit(gateways.aurora.vacuum_stats, [spec.source for spec in catalog.tables])
        slots = pool.submit(gateways.aurora.replication_slots)
        tasks = {name: pool.submit(_task_setup, gateways, name) for name in catalog.tasks()}
        setups = {name: _settled(future, deadline, timeout) for name, future in tasks.items()}
        # Where each table's files really are (its task's target endpoint, else the catalog's values).
        groups: dict[tuple[str, str], list[TableSpec]] = {}
        for task, specs in catalog.tasks().items():
            target = setups[task][3] if isinstance(setups[task], tuple) else setups[task]
            for spec in (resolved(s, target) for s in specs):
                if spec.s3_bucket:
                    groups.setdefault((spec.s3_bucket, spec.s3_prefix or ""), []).append(spec)
        lifecycles = {bucket: pool.submit(gateways.s3.lifecycle_rules, bucket)
                      for bucket in dict.fromkeys(bucket for bucket, _ in groups)}

        found: list[Finding] = []
        try:
            stats = answer(vacuum, deadline, "Aurora", timeout)
            found += [f.vacuum_finding(spec, stats.get(spec.source), now, limits) for spec in catalog.tables]
        except Unanswered as exc:
            found += [_unknown(Topic.VACUUM, spec.source, exc, spec.name) for spec in catalog.tables]
        try:
            every = answer(slots, deadline, "Aurora", timeout)
            owners, unsure = _slot_owners(every, setups)
            found += f.wal_findings(every, limits, owners, unsure)
        except Unanswered as exc:
            found.append(_unknown(Topic.WAL, "logical replication slots", exc))
        # Each task's own instance (its ReplicationInstanceArn), else the catalog's dms_instance.
        instances = list(dict.fromkeys(name for name in (
            instance_for(specs[0], setups[task][2] if isinstance(setups[task], tuple) else setups[task])[0]
            for task, specs in catalog.tasks().items()) if name))
        metrics = {name: pool.submit(gateways.dms.instance_metrics, name, now) for name in instances}
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


def _task_setup(gateways: Gateways, name: str) -> tuple[TaskInfo, Any, Any, Any]:
    """A task, its source endpoint, its instance identifier and its target endpoint (each of the last
    three reads may fail on its own: the error stands in its place)."""
    task = gateways.dms.task(name)
    out: list[Any] = [task]
    for read, arn in ((gateways.dms.source, task.source_endpoint_arn), (gateways.dms.instance, task.instance_arn),
                      (gateways.dms.target, task.target_endpoint_arn)):
        try:
            out.append(read(arn))
        except GatewayError as exc:
            out.append(exc)
    return out[0], out[1], out[2], out[3]


def _settled(future: Any, deadline: float, timeout: float) -> Any:
    try:
        return answer(future, deadline, "DMS", timeout)
    except Unanswered as exc:
        return exc


def _slot_owners(every: list, setups: dict[str, Any]) -> tuple[dict[str, str], tuple[str, ...]]:
    """slot -> the catalog task that reads it, and the tasks whose slot could not be told."""
    owners, unsure = {}, []
    for name, setup in setups.items():
        if not isinstance(setup, tuple):
            unsure.append(name)
            continue
        task, source = setup[0], setup[1]
        found = claim(every, source, task)
        if found.own is not None:
            owners[found.own.name] = name
        elif found.ambiguous:
            unsure.append(name)
    return owners, tuple(unsure)


def _unknown(topic: Topic, subject: str, reason: Unanswered, table: str | None = None) -> Finding:
    return Finding(topic, subject, Status.UNKNOWN, f"unknown: {reason}", table=table)
