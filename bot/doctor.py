"""`syncbot doctor`: everything a new deployment needs, one line a check, each failure with its fix.

The checks only read: describe calls are made for real, the calls that change things are checked with
IAM policy simulation. The Slack check lives outside the core (it needs slack_sdk) and is passed in."""
from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Callable

from .catalog import Catalog, CatalogError, TableSpec, load_catalog
from .gateways import GatewayError, NotFound
from .gateways.aurora import AuroraGateway
from .gateways.dms import DmsGateway, TaskInfo
from .gateways.iam import IamGateway, SimulationUnavailable
from .diagnostics.layout import instance_for, locate
from .gateways.s3 import S3Gateway
from .gateways.snowflake import SnowflakeGateway
from .models import Status, utcnow
from .redaction import redact
from .redis_conn import topology
from .text_output import MARK
from .settings import Settings

# The AWS calls the bot makes, by IAM action (the README's policies list exactly these).
READ_ACTIONS = ("dms:DescribeReplicationTasks", "dms:DescribeTableStatistics", "dms:DescribeEndpoints",
                "dms:DescribeReplicationInstances", "cloudwatch:GetMetricData",
                "cloudwatch:GetMetricWidgetImage", "logs:FilterLogEvents", "s3:ListBucket",
                "s3:GetLifecycleConfiguration")
REMEDIATION_ACTIONS = ("dms:StartReplicationTask", "dms:StopReplicationTask", "dms:ReloadTables")
_DENIED = re.compile(r"AccessDenied|UnauthorizedOperation|not authorized|: 403\b")
POLICY_HINT = "the README's \"IAM policy\" section"


@dataclass(frozen=True)
class Line:
    area: str  # Settings, Catalog, Slack, Redis, Aurora, Snowflake, AWS
    subject: str
    status: Status  # OK; WARNING: works, check by hand; FAILING: missing; UNKNOWN: not checked
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class DoctorReport:
    lines: tuple[Line, ...]

    @property
    def ok(self) -> bool:
        """Nothing needed is missing (warnings are for a person to check)."""
        return not any(line.status in (Status.FAILING, Status.UNKNOWN) for line in self.lines)

    def text(self) -> str:
        missing = sum(1 for line in self.lines if line.status is Status.FAILING)
        unchecked = sum(1 for line in self.lines if line.status is Status.UNKNOWN)
        warned = sum(1 for line in self.lines if line.status is Status.WARNING)
        head = f"syncbot doctor: {len(self.lines)} checks, {missing} missing"
        head += f", {unchecked} not checked" if unchecked else ""
        head += f", {warned} to check by hand" if warned else ""
        rows = [f"[{MARK[line.status]}] {line.area:<9} {line.subject}: {line.detail}"
                + (f" — fix: {line.fix}" if line.fix else "") for line in self.lines]
        verdict = "Ready." if self.ok else "Not ready: fix the lines marked FAIL (and ???? once they can run)."
        return redact("\n".join([head, "", *rows, "", verdict]))

    def to_json(self) -> str:
        return redact(json.dumps({"ok": self.ok, "lines": [asdict(line) for line in self.lines]}, indent=2))


@dataclass
class Backends:
    """What the doctor probes. None where the settings do not say how to reach it (`problem` says why)."""

    dms: DmsGateway | None
    s3: S3Gateway | None
    iam: IamGateway | None
    aurora: AuroraGateway | None
    snowflake: SnowflakeGateway | None
    redis: Any
    redis_where: str = "Redis"  # the URL without its password
    aws_problem: str = ""


def examine(settings: Settings, backends: Backends, slack: Callable[[], list[Line]], *,
            read_only: bool = False, now: datetime | None = None) -> DoctorReport:
    now = now or utcnow()
    lines = [_request_verification(settings)]
    catalog, catalog_line = _catalog(settings.catalog_path)
    lines.append(catalog_line)
    probes: list[Callable[[], list[Line]]] = [
        slack,
        lambda: _redis_lines(backends, settings.min_replicas),
        lambda: _aurora(backends.aurora, catalog),
        lambda: _snowflake(backends.snowflake, catalog, settings.snowflake_database),
        lambda: _aws(backends, catalog, read_only, now),
    ]
    # The backends are independent: probe them side by side, report them in a fixed order.
    with ThreadPoolExecutor(max_workers=len(probes), thread_name_prefix="syncbot-doctor") as pool:
        for found in pool.map(_safely, probes):
            lines += found
    return DoctorReport(tuple(lines))


def _safely(probe: Callable[[], list[Line]]) -> list[Line]:
    try:
        return probe()
    except Exception as exc:  # noqa: BLE001 - one probe's bug must not hide the other lines
        return [Line("Doctor", "internal", Status.UNKNOWN, f"a check failed unexpectedly ({type(exc).__name__})")]


def _request_verification(settings: Settings) -> Line:
    if settings.slack_app_token is not None:
        return Line("Settings", "Slack requests", Status.OK, "SLACK_APP_TOKEN set: Socket Mode")
    if settings.slack_signing_secret is not None:
        return Line("Settings", "Slack requests", Status.OK, "SLACK_SIGNING_SECRET set: HTTP mode")
    return Line("Settings", "Slack requests", Status.FAILING, "neither SLACK_SIGNING_SECRET nor SLACK_APP_TOKEN is set",
                "set SLACK_SIGNING_SECRET (Basic Information → Signing Secret), or SLACK_APP_TOKEN for Socket Mode")


def _catalog(path: str) -> tuple[Catalog | None, Line]:
    try:
        catalog = load_catalog(path)
    except CatalogError as exc:
        unreadable = "cannot read" in str(exc)
        return None, Line("Catalog", "catalog", Status.FAILING, str(exc),
                          "point SYNCBOT_CATALOG at the catalog file" if unreadable else
                          "correct the line named (the README's catalog reference lists every key)")
    return catalog, Line("Catalog", "catalog", Status.OK, f"{path}: {len(catalog.tables)} tables")


def _redis_lines(backends: Backends, needed: int) -> list[Line]:
    """Redis itself, then (when it answers) the primary found and its replicas."""
    first = _redis(backends)
    return [first] if first.status is Status.FAILING else [first, _replicas(backends, needed)]


def _replicas(backends: Backends, needed: int) -> Line:
    """The primary found and its replicas: each transition waits for `needed` of them (WAIT)."""
    try:
        seen = topology(backends.redis)
    except Exception as exc:  # noqa: BLE001 - _redis already says it does not answer
        return Line("Redis", "replicas", Status.WARNING, f"replication could not be read ({type(exc).__name__})",
                    "allow INFO replication, so the doctor can see the replicas")
    where = f"primary {seen.primary}" + (" (found through Sentinel)" if seen.via_sentinel else "")
    online = f"{len(seen.replicas)} replica(s) online" + (f": {', '.join(seen.replicas)}" if seen.replicas else "")
    if len(seen.replicas) < needed:
        return Line("Redis", "replicas", Status.FAILING, f"{where}, {online}; every transition must be confirmed "
                    f"by {needed} (SYNCBOT_REDIS_MIN_REPLICAS), so every fix is refused",
                    "start the replicas, or lower SYNCBOT_REDIS_MIN_REPLICAS (a failover may then lose approvals)")
    if not seen.replicas:
        return Line("Redis", "replicas", Status.WARNING if seen.via_sentinel else Status.OK,
                    f"{where}, no replica: a failover is not covered",
                    "run replicas behind Redis Sentinel (REDIS_SENTINELS) to survive losing this host")
    return Line("Redis", "replicas", Status.OK, f"{where}, {online}; {needed} must confirm each transition")


def _redis(backends: Backends) -> Line:
    if backends.redis is None:
        return Line("Redis", backends.redis_where, Status.FAILING, "REDIS_URL is not a Redis URL",
                    "set REDIS_URL, e.g. redis://host:6379/0")
    try:
        backends.redis.ping()
    except Exception as exc:  # noqa: BLE001 - any failure to answer is the finding
        return Line("Redis", backends.redis_where, Status.FAILING, f"does not answer ({type(exc).__name__})",
                    "check REDIS_URL and that Redis is reachable from here: fix buttons and approvals live there")
    try:
        aof = str(backends.redis.info("persistence").get("aof_enabled", "0")) == "1"
    except Exception:  # noqa: BLE001 - managed Redis may refuse INFO; say so rather than guess
        return Line("Redis", backends.redis_where, Status.WARNING, "answers; persistence could not be read",
                    "make sure Redis keeps an append-only file: approvals and re-sync checkpoints live there")
    if not aof:
        return Line("Redis", backends.redis_where, Status.WARNING, "answers, but persistence (appendonly) is off",
                    "run Redis with appendonly yes: a restart would lose approvals and re-sync checkpoints")
    return Line("Redis", backends.redis_where, Status.OK, "answers, append-only file on")


# -- Aurora ---------------------------------------------------------------------------------------

def _aurora(aurora: AuroraGateway | None, catalog: Catalog | None) -> list[Line]:
    if aurora is None:
        return [Line("Aurora", "connection", Status.FAILING, "AURORA_DATABASE_URL is not set",
                     "set AURORA_DATABASE_URL=postgresql://<read-only role>@<writer endpoint>:5432/<database>")]
    try:
        slots = aurora.replication_slots()
    except GatewayError as exc:
        return [Line("Aurora", "connection", Status.FAILING, f"cannot query: {exc}",
                     "check AURORA_DATABASE_URL (host, database, role, password) and that this host can reach "
                     "the writer endpoint"), _skipped("Aurora", "tables", "no connection")]
    lines = [Line("Aurora", "connection", Status.OK, f"connected; {len(slots)} logical replication slot(s) visible")
             if slots else
             Line("Aurora", "connection", Status.WARNING, "connected, but no logical replication slot is visible",
                  "DMS CDC needs one: check rds.logical_replication = 1 and that the DMS task has started")]
    if catalog is None:
        return lines + [_skipped("Aurora", "tables", "the catalog did not load")]
    for spec in catalog.tables:
        lines.append(_aurora_table(aurora, spec))
    return lines


def _aurora_table(aurora: AuroraGateway, spec: TableSpec) -> Line:
    try:
        columns = aurora.columns(spec.source_schema, spec.source_table)
    except NotFound:
        return Line("Aurora", spec.source, Status.FAILING, "table not found, or not visible to the bot's role",
                    f"check `source` for {spec.name} in the catalog; else GRANT USAGE ON SCHEMA {spec.source_schema} "
                    f"TO <bot role>; GRANT SELECT ON {spec.source} TO <bot role>;")
    except GatewayError as exc:
        return Line("Aurora", spec.source, Status.FAILING, str(exc))
    return Line("Aurora", spec.source, Status.OK, f"exists ({len(columns)} columns)")


# -- Snowflake ------------------------------------------------------------------------------------

def _snowflake(snowflake: SnowflakeGateway | None, catalog: Catalog | None, database: str | None) -> list[Line]:
    if snowflake is None:
        return [Line("Snowflake", "connection", Status.FAILING, "SNOWFLAKE_ACCOUNT and SNOWFLAKE_USER are not both set",
                     "set SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, a password or key file, SNOWFLAKE_ROLE, "
                     "SNOWFLAKE_WAREHOUSE and SNOWFLAKE_DATABASE")]
    try:
        role = snowflake.current_role()
    except GatewayError as exc:
        return [Line("Snowflake", "connection", Status.FAILING, f"cannot connect: {exc}",
                     "check SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER, the password or key file and SNOWFLAKE_ROLE"),
                _skipped("Snowflake", "tables and pipes", "no connection")]
    lines = [Line("Snowflake", "connection", Status.OK, f"connected as role {role}")]
    if catalog is None:
        return lines + [_skipped("Snowflake", "tables and pipes", "the catalog did not load")]
    for spec in catalog.tables:
        for key, table in (("final_table", spec.final_table), ("staging_table", spec.staging_table)):
            lines.append(_snowflake_table(snowflake, spec, key, table, role, database))
        lines.append(_snowflake_pipe(snowflake, spec, role, database))
    return lines


def _snowflake_table(snowflake: SnowflakeGateway, spec: TableSpec, key: str, table: str, role: str,
                     database: str | None) -> Line:
    try:
        columns = snowflake.columns(table)
    except NotFound:
        return Line("Snowflake", table, Status.FAILING, f"table not found, or not visible to role {role}",
                    f"check `{key}` for {spec.name} in the catalog; else GRANT SELECT ON TABLE "
                    f"{_qualified(table, database)} TO ROLE {role}; (with USAGE on its database and schema)")
    except GatewayError as exc:
        return Line("Snowflake", table, Status.FAILING, str(exc))
    return Line("Snowflake", table, Status.OK, f"visible ({len(columns)} columns)")


def _snowflake_pipe(snowflake: SnowflakeGateway, spec: TableSpec, role: str, database: str | None) -> Line:
    subject = f"pipe {spec.pipe}"
    try:
        status = snowflake.pipe_status(spec.pipe)
    except NotFound:
        return Line("Snowflake", subject, Status.FAILING,
                    f"SYSTEM$PIPE_STATUS: no such pipe, or role {role} may not see it",
                    f"check `pipe` for {spec.name} in the catalog; else GRANT MONITOR ON PIPE "
                    f"{_qualified(spec.pipe, database)} TO ROLE {role};")
    except GatewayError as exc:
        return Line("Snowflake", subject, Status.FAILING, f"SYSTEM$PIPE_STATUS: {exc}")
    return Line("Snowflake", subject, Status.OK, f"status visible ({status.execution_state})")


def _qualified(name: str, database: str | None) -> str:
    return name if name.count(".") == 2 else f"{database or '<database>'}.{name}"


# -- AWS ------------------------------------------------------------------------------------------

def _aws(backends: Backends, catalog: Catalog | None, read_only: bool, now: datetime) -> list[Line]:
    if backends.iam is None or backends.dms is None or backends.s3 is None:
        return [Line("AWS", "configuration", Status.FAILING, backends.aws_problem or "AWS clients unavailable",
                     "set AWS_REGION (and credentials through the standard chain)")]
    try:
        caller = backends.iam.caller_arn()
    except GatewayError as exc:
        return [Line("AWS", "credentials", Status.FAILING, str(exc),
                     "give the process credentials: an instance or task role, AWS_PROFILE, or access keys"),
                _skipped("AWS", "API permissions", "no credentials")]
    lines = [Line("AWS", "credentials", Status.OK, f"calling as {caller}")]
    if catalog is None:
        return lines + [_skipped("AWS", "API permissions", "the catalog did not load")]
    tasks: dict[str, TaskInfo | None] = {}
    for task_id in dict.fromkeys(spec.dms_task for spec in catalog.tables):
        line, tasks[task_id] = _describe_task(backends.dms, task_id)
        lines.append(line)
        task = tasks[task_id]
        lines.append(_call("dms:DescribeTableStatistics", f"task {task_id}",
                           lambda t=task: backends.dms.table_statistics(t.arn)) if task else
                     _skipped("AWS", f"dms:DescribeTableStatistics (task {task_id})", "needs the task"))
    # The task's own endpoints and instance: where its files are, which slot and instance it uses.
    targets: dict[str, Any] = {}
    instances: dict[str, str | None] = {}
    by_task = catalog.tasks()
    for task_id, task in tasks.items():
        endpoint_line, targets[task_id] = _read("dms:DescribeEndpoints", f"task {task_id}'s target endpoint",
                                                task and (lambda t=task: backends.dms.target(t.target_endpoint_arn)))
        lines.append(endpoint_line)
        if task is not None:
            lines.append(_read("dms:DescribeEndpoints", f"task {task_id}'s source endpoint",
                               lambda t=task: backends.dms.source(t.source_endpoint_arn))[0])
        instance_line, found = _read("dms:DescribeReplicationInstances", f"task {task_id}'s instance",
                                     task and (lambda t=task: backends.dms.instance(t.instance_arn)))
        lines.append(instance_line)
        instances[task_id] = instance_for(by_task[task_id][0], found)[0]
    for instance in dict.fromkeys(i for i in instances.values() if i):
        lines.append(_call("cloudwatch:GetMetricData", f"instance {instance}",
                           lambda i=instance: backends.dms.instance_metrics(i, now, hours=1)))
    for task_id, task in tasks.items():
        lines.append(_task_log(backends.dms, task_id, instances[task_id], task, now))
    first_layout: dict[str, Any] = {}
    for spec in catalog.tables:
        found = locate(spec, targets.get(spec.dms_task)).layout
        if found is not None:
            first_layout.setdefault(found.bucket, found)
    for bucket, layout in first_layout.items():
        lines.append(_call("s3:ListBucket", f"bucket {bucket}",
                           lambda found=layout: backends.s3.newest_cdc_files(found, now)))
        lines.append(_call("s3:GetLifecycleConfiguration", f"bucket {bucket}",
                           lambda b=bucket: backends.s3.lifecycle_rules(b)))
    for task_id, task in tasks.items():
        lines += _simulate(backends.iam, caller, task_id, task, read_only)
    return lines


def _describe_task(dms: DmsGateway, task_id: str) -> tuple[Line, TaskInfo | None]:
    subject = f"dms:DescribeReplicationTasks (task {task_id})"
    try:
        task = dms.task(task_id)
    except NotFound:
        return Line("AWS", subject, Status.FAILING, "allowed, but no such task in this account and region",
                    "check `dms_task` in the catalog (the ReplicationTaskIdentifier) and AWS_REGION"), None
    except GatewayError as exc:
        return _failed("dms:DescribeReplicationTasks", subject, exc), None
    return Line("AWS", subject, Status.OK, f"allowed; task is {task.status}"), task


def _task_log(dms: DmsGateway, task_id: str, instance: str | None, task: TaskInfo | None, now: datetime) -> Line:
    """The task log read a broken task's diagnosis makes, made for real over the last hour."""
    action = "logs:FilterLogEvents"
    subject = f"{action} (task {task_id})"
    if task is None:
        return _skipped("AWS", subject, "needs the task")
    if instance is None:
        return _skipped("AWS", subject, "needs the replication instance's identifier")
    try:
        log = dms.task_log(instance, task.resource_id, now, hours=1)
    except GatewayError as exc:
        return _failed(action, subject, exc)
    if log.missing:
        name = log.group if log.missing == "log group" else log.stream
        return Line("AWS", subject, Status.WARNING, f"allowed, but task logging is off (no {log.missing} {name})",
                    "set Logging.EnableLogging = true in the task settings, so a broken task's diagnosis "
                    "can quote its log")
    return Line("AWS", subject, Status.OK, f"allowed ({log.group})")


def _read(action: str, what: str, call: Callable[[], Any] | None) -> tuple[Line, Any]:
    """A read whose answer later lines use: its line, and the answer (or the error, or None)."""
    subject = f"{action} ({what})"
    if call is None:
        return _skipped("AWS", subject, "needs the task"), None
    try:
        value = call()
    except NotFound as exc:
        return Line("AWS", subject, Status.FAILING, f"allowed, but {exc}",
                    "the task names an endpoint or instance that is gone: check the task in the DMS console"), exc
    except GatewayError as exc:
        line = _failed(action, subject, exc)
        if "target endpoint" in what and _DENIED.search(str(exc)):
            line = Line("AWS", subject, Status.FAILING, line.detail, line.fix + "; until then the diagnosis falls "
                        "back to the catalog's s3_bucket / s3_prefix and assumes the flat layout")
        return line, exc
    return Line("AWS", subject, Status.OK, "allowed"), value


def _call(action: str, what: str, call: Callable[[], Any]) -> Line:
    subject = f"{action} ({what})"
    try:
        call()
    except NotFound as exc:
        return Line("AWS", subject, Status.FAILING, f"allowed, but {exc}", "check the catalog's names and AWS_REGION")
    except GatewayError as exc:
        return _failed(action, subject, exc)
    return Line("AWS", subject, Status.OK, "allowed")


def _failed(action: str, subject: str, exc: GatewayError) -> Line:
    if _DENIED.search(str(exc)):
        return Line("AWS", subject, Status.FAILING, f"denied ({exc})",
                    f"allow {action} in the bot's IAM policy ({POLICY_HINT})")
    return Line("AWS", subject, Status.FAILING, str(exc), "check AWS_REGION and network access to the AWS endpoint")


def _simulate(iam: IamGateway, caller: str, task_id: str, task: TaskInfo | None, read_only: bool) -> list[Line]:
    """The remediation calls, checked without making them. Unavailable simulation is listed, not failed."""
    what = f"task {task_id}"
    try:
        decisions = iam.simulate(caller, list(REMEDIATION_ACTIONS), task.arn if task else None)
    except SimulationUnavailable as exc:
        return [Line("AWS", f"remediation calls ({what})", Status.WARNING,
                     f"unchecked: {', '.join(REMEDIATION_ACTIONS)} ({exc})",
                     "verify them in the bot's IAM policy by hand, or allow iam:SimulatePrincipalPolicy on the "
                     "bot's own role so the doctor can")]
    except GatewayError as exc:
        return [Line("AWS", f"remediation calls ({what})", Status.UNKNOWN, f"unchecked: {exc}")]
    lines = []
    for action in REMEDIATION_ACTIONS:
        decision = decisions.get(action, "implicitDeny")
        if decision == "allowed":
            lines.append(Line("AWS", f"{action} ({what})", Status.OK, "allowed (simulated)"))
            continue
        status = Status.WARNING if read_only else Status.FAILING
        lines.append(Line("AWS", f"{action} ({what})", status, f"denied (simulated: {decision})",
                          f"allow {action} on the task ({POLICY_HINT}, remediation)"
                          + ("" if read_only else "; or run `syncbot doctor --read-only` if this deployment "
                             "never applies fixes")))
    return lines


def _skipped(area: str, subject: str, why: str) -> Line:
    return Line(area, subject, Status.UNKNOWN, f"not checked: {why}")
