"""AWS DMS, its CloudWatch metrics (namespace AWS/DMS) and its task log (CloudWatch Logs): one gateway,
since the metric dimensions and the log's group and stream are all named from the task itself (its
replication instance and the resource id at the end of its ARN)."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from . import GatewayError, NotFound
from .cache import TtlCache
from .endpoints import PgSource, S3Target, pg_source, s3_target

LATENCY_METRICS = ("CDCLatencySource", "CDCLatencyTarget")
LATENCY_PERIOD_S, LATENCY_STAT = 300, "Maximum"  # the check's series and the picture's, alike
# DescribeTableStatistics TableState values, lower-cased: a table DMS gave up on, and one being (re)loaded.
TABLE_STATES_BAD = ("table error", "table cancelled", "table does not exist")
TABLE_STATES_LOADING = ("table is being reloaded", "before load", "full load")
METRIC_QUERIES_PER_CALL = 500  # GetMetricData's limit


@dataclass(frozen=True)
class TaskInfo:
    identifier: str
    arn: str
    status: str
    stop_reason: str = ""
    last_failure_message: str = ""
    stats: dict[str, Any] = field(default_factory=dict)
    migration_type: str = ""  # full-load, cdc or full-load-and-cdc
    source_endpoint_arn: str = ""
    target_endpoint_arn: str = ""
    instance_arn: str = ""  # ReplicationInstanceArn: the instance the task runs on now

    @property
    def never_ran(self) -> bool:
        """A task DMS has never started: `ready` with no start recorded in ReplicationTaskStats
        (StartDate: "started either with a fresh start or a resume"; FreshStartDate likewise).
        botocore's StartReplicationTaskType: start-replication "is the only valid action that can be
        used for the first time a task ... is run"; resume-processing then "will result in data errors"."""
        return self.status == "ready" and not (self.stats.get("StartDate") or self.stats.get("FreshStartDate"))

    @property
    def reloads_tables(self) -> bool:
        """ReloadTables works only for a task that loads tables: MigrationType full-load or
        full-load-and-cdc, not cdc (DMS user guide, "Reloading tables during a task")."""
        return self.migration_type in ("full-load", "full-load-and-cdc")

    @property
    def resource_id(self) -> str:
        """CloudWatch's ReplicationTaskIdentifier: the ARN's last segment, not the name we gave the task."""
        return self.arn.rsplit(":", 1)[-1]

    @property
    def tables_errored(self) -> int:
        return int(self.stats.get("TablesErrored") or 0)

    @property
    def stopped_at(self) -> datetime | None:
        """When a task that is not running stopped (ReplicationTaskStats.StopDate), if DMS says."""
        value = self.stats.get("StopDate")
        return _utc(value) if self.status != "running" and isinstance(value, datetime) else None


@dataclass(frozen=True)
class TableStat:
    schema: str
    table: str
    state: str
    inserts: int = 0
    updates: int = 0
    deletes: int = 0
    full_load_rows: int = 0
    full_load_error_rows: int = 0
    last_update_time: datetime | None = None
    full_load_start: datetime | None = None  # when the table's latest full load (or reload) began
    full_load_end: datetime | None = None
    reloaded: bool = False  # FullLoadReloaded: the latest full load was a ReloadTables


@dataclass(frozen=True)
class Series:
    """One metric's datapoints, oldest first."""

    metric: str
    points: tuple[tuple[datetime, float], ...] = ()

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None


# The task log. DMS writes it only when the task settings have Logging.EnableLogging = true, to the
# group dms-tasks-<replication instance identifier>, stream dms-task-<task resource id>.
TASK_LOG_EVENTS = 1000  # events one window's read takes at most (FilterLogEvents allows 10 000 a call)
TASK_LOG_PAGES = 10  # FilterLogEvents calls one window's read makes at most
TASK_LOG_TAIL = timedelta(minutes=10)  # read on its own when the whole window did not fit the bound
TASK_LOG_BYTES = 256 * 1024  # what one read keeps of the lines' text at most
TASK_LOG_LINE_CHARS = 1000  # a longer line is cut: the start says what went wrong
# Errors and warnings only: DMS writes the severity letter after the component, as in
# "2023-05-24T13:52:50 [SOURCE_CAPTURE  ]W:  Value of column ... (postgres_pglogical.c:2550)".
TASK_LOG_PATTERN = '?"]E:" ?"]W:"'
_SEVERITY = re.compile(r"\[([A-Z0-9_]+) *\]([A-Z]):")


@dataclass(frozen=True)
class LogLine:
    at: datetime
    severity: str  # "E" (error) or "W" (warning)
    text: str  # the line as DMS wrote it, cut at TASK_LOG_LINE_CHARS


@dataclass(frozen=True)
class TaskLog:
    """One bounded read of a task log: its error and warning lines of the last `hours`, oldest first."""

    group: str
    stream: str
    hours: int
    end: datetime
    lines: tuple[LogLine, ...] = ()
    missing: str = ""  # "log group" or "log stream" when there is none: task logging is off
    more: bool = False  # the window held more than one read takes: these are its newest lines


def task_log_names(instance: str, task_resource_id: str) -> tuple[str, str]:
    return f"dms-tasks-{instance}", f"dms-task-{task_resource_id}"


def _latency_queries(targets: list[tuple[str, str]]) -> list[dict]:
    """Dimensions: the instance's name and the task's resource id (the ARN's last segment)."""
    return [
        {
            "Id": f"t{t}m{m}",
            "Label": metric,
            "MetricStat": {
                "Metric": {"Namespace": "AWS/DMS", "MetricName": metric, "Dimensions": [
                    {"Name": "ReplicationInstanceIdentifier", "Value": instance},
                    {"Name": "ReplicationTaskIdentifier", "Value": resource_id},
                ]},
                "Period": LATENCY_PERIOD_S,
                "Stat": LATENCY_STAT,
            },
        }
        for t, (instance, resource_id) in enumerate(targets)
        for m, metric in enumerate(LATENCY_METRICS)
    ]


def latency_widget(instance: str, resource_id: str, hours: int = 3) -> str:
    """GetMetricWidgetImage's MetricWidget (CloudWatch's "Metric Widget Structure"): the latency check's
    own metrics, dimensions, period and statistic, drawn by CloudWatch over the same hours."""
    return json.dumps({
        "title": f"CDC latency (seconds), last {hours} h",
        "view": "timeSeries", "stacked": False, "width": 800, "height": 300,
        "start": f"-PT{hours}H", "period": LATENCY_PERIOD_S, "stat": LATENCY_STAT,
        "yAxis": {"left": {"min": 0, "label": "seconds", "showUnits": False}},
        "metrics": [["AWS/DMS", metric, "ReplicationInstanceIdentifier", instance,
                     "ReplicationTaskIdentifier", resource_id, {"label": metric}] for metric in LATENCY_METRICS],
    })


class DmsGateway:
    def __init__(self, dms_client: Any, cloudwatch_client: Any, logs_client: Any):
        self._dms = dms_client
        self._cw = cloudwatch_client
        self._logs = logs_client
        # Endpoints and instances change only when someone reconfigures DMS: read once a few minutes.
        self._slow = TtlCache()

    # The task's endpoints and instance (slow-changing, cached) ---------------------------------------

    def target(self, endpoint_arn: str) -> S3Target:
        """The S3 target endpoint's S3Settings: where and how DMS writes the task's files."""
        raw = self._slow.get(("endpoint", endpoint_arn), lambda: self._endpoint(endpoint_arn))
        if (raw.get("EngineName") or "").lower() != "s3":
            raise GatewayError(f"target endpoint {raw.get('EndpointIdentifier', endpoint_arn)} is "
                               f"{raw.get('EngineName') or 'not S3'}, not an S3 target")
        return s3_target(raw)

    def source(self, endpoint_arn: str) -> PgSource:
        """The PostgreSQL source endpoint's PostgreSQLSettings (its SlotName, database and plugin)."""
        return pg_source(self._slow.get(("endpoint", endpoint_arn), lambda: self._endpoint(endpoint_arn)))

    def _endpoint(self, endpoint_arn: str) -> dict[str, Any]:
        return self._described("DescribeEndpoints", self._dms.describe_endpoints, "endpoint-arn", endpoint_arn,
                               "Endpoints", f"DMS endpoint {endpoint_arn} not found (deleted?)")

    def instance(self, instance_arn: str) -> str:
        """The replication instance's identifier (the CloudWatch dimension and the log group's name).
        botocore's model: the identifier "is stored as a lowercase string"."""
        return self._slow.get(("instance", instance_arn), lambda: self._described(
            "DescribeReplicationInstances", self._dms.describe_replication_instances, "replication-instance-arn",
            instance_arn, "ReplicationInstances", f"replication instance {instance_arn} not found",
        )["ReplicationInstanceIdentifier"].lower())

    def _described(self, operation: str, call: Any, by: str, arn: str, key: str, missing: str) -> dict[str, Any]:
        """One resource by its ARN from a Describe* call with a filter; gone (a fault or no match) is NotFound."""
        try:
            found = call(Filters=[{"Name": by, "Values": [arn]}])[key]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundFault":
                raise NotFound(missing) from None
            raise GatewayError(f"{operation} failed: {_code(exc)}") from None
        except BotoCoreError as exc:
            raise GatewayError(f"{operation} failed: {type(exc).__name__}") from None
        if not found:
            raise NotFound(missing)
        return found[0]

    def task(self, identifier: str) -> TaskInfo:
        return self._task("replication-task-id", identifier)

    def task_by_arn(self, arn: str) -> TaskInfo:
        """The task an approved plan names by its ARN (the catalog may have changed since)."""
        return self._task("replication-task-arn", arn)

    def _task(self, by: str, identifier: str) -> TaskInfo:
        try:
            found = self._dms.describe_replication_tasks(
                Filters=[{"Name": by, "Values": [identifier]}], WithoutSettings=True
            )["ReplicationTasks"]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundFault":
                raise NotFound(f"DMS task {identifier!r} not found") from None
            raise GatewayError(f"DescribeReplicationTasks failed: {_code(exc)}") from None
        if not found:
            raise NotFound(f"DMS task {identifier!r} not found")
        raw = found[0]
        return TaskInfo(
            identifier=raw["ReplicationTaskIdentifier"],
            arn=raw["ReplicationTaskArn"],
            status=raw.get("Status", ""),
            stop_reason=raw.get("StopReason", "") or "",
            last_failure_message=raw.get("LastFailureMessage", "") or "",
            stats=raw.get("ReplicationTaskStats", {}) or {},
            migration_type=raw.get("MigrationType", "") or "",
            source_endpoint_arn=raw.get("SourceEndpointArn", "") or "",
            target_endpoint_arn=raw.get("TargetEndpointArn", "") or "",
            instance_arn=raw.get("ReplicationInstanceArn", "") or "",
        )

    def table_statistics(self, task_arn: str) -> dict[tuple[str, str], TableStat]:
        """Every table of the task, keyed by lower-case (schema, table); one paginated walk per task."""
        stats: dict[tuple[str, str], TableStat] = {}
        marker = None
        while True:
            kwargs: dict[str, Any] = {"ReplicationTaskArn": task_arn, "MaxRecords": 500}
            if marker:
                kwargs["Marker"] = marker
            try:
                page = self._dms.describe_table_statistics(**kwargs)
            except ClientError as exc:
                raise GatewayError(f"DescribeTableStatistics failed: {_code(exc)}") from None
            for raw in page.get("TableStatistics", []):
                stat = TableStat(
                    schema=raw.get("SchemaName", ""),
                    table=raw.get("TableName", ""),
                    state=raw.get("TableState", ""),
                    inserts=int(raw.get("Inserts", 0)),
                    updates=int(raw.get("Updates", 0)),
                    deletes=int(raw.get("Deletes", 0)),
                    full_load_rows=int(raw.get("FullLoadRows", 0)),
                    full_load_error_rows=int(raw.get("FullLoadErrorRows", 0)),
                    last_update_time=raw.get("LastUpdateTime"),
                    full_load_start=raw.get("FullLoadStartTime"),
                    full_load_end=raw.get("FullLoadEndTime"),
                    reloaded=bool(raw.get("FullLoadReloaded")),
                )
                stats[(stat.schema.lower(), stat.table.lower())] = stat
            marker = page.get("Marker")
            if not marker:
                return stats

    def cdc_latency_many(self, targets: list[tuple[str, str]], now: datetime,
                         hours: int = 3) -> dict[tuple[str, str], dict[str, Series]]:
        """CDCLatencySource/Target (5-minute maxima over the last hours) of many (instance, task resource
        id) pairs, as few GetMetricData calls as its limit of 500 queries a call allows (NextToken
        pages merged)."""
        out: dict[tuple[str, str], dict[str, Series]] = {}
        per_call = METRIC_QUERIES_PER_CALL // len(LATENCY_METRICS)
        for start in range(0, len(targets), per_call):
            chunk = targets[start:start + per_call]
            points = self._metric_points(_latency_queries(chunk), now - timedelta(hours=hours), now)
            for t, target in enumerate(chunk):
                out[target] = {metric: Series(metric, tuple(sorted(points.get(f"t{t}m{m}", ()))))
                               for m, metric in enumerate(LATENCY_METRICS)}
        return out

    def _metric_points(self, queries: list[dict], start: datetime, end: datetime) -> dict[str, list]:
        """GetMetricData, every page: query Id -> [(time, value)]."""
        points: dict[str, list] = {}
        token = None
        while True:
            kwargs: dict[str, Any] = {"MetricDataQueries": queries, "StartTime": start, "EndTime": end,
                                      "ScanBy": "TimestampAscending"}
            if token:
                kwargs["NextToken"] = token
            try:
                resp = self._cw.get_metric_data(**kwargs)
            except ClientError as exc:
                raise GatewayError(f"GetMetricData failed: {_code(exc)}") from None
            for r in resp.get("MetricDataResults", []):
                points.setdefault(r["Id"], []).extend(
                    (_utc(t), float(v)) for t, v in zip(r.get("Timestamps", []), r.get("Values", [])))
            token = resp.get("NextToken")
            if not token:
                return points

    # The task's own log -------------------------------------------------------------------------

    def task_log(self, instance: str, task_resource_id: str, end: datetime, hours: int = 3) -> TaskLog:
        """The errors and warnings the task logged in the hours before `end`, bounded in events, calls
        and bytes kept. No group or stream: logging is off.

        FilterLogEvents returns events oldest first, and "can return empty results while there are
        more log events available through the token" (CloudWatch Logs API reference, FilterLogEvents):
        pages are followed, empty ones included, within the bound. A read cut at its bound has the
        oldest lines, not the ones that say why the task stopped, so the last minutes before `end` are
        then read on their own, and the newest lines are the ones kept."""
        group, stream = task_log_names(instance, task_resource_id)
        start = end - timedelta(hours=hours)
        try:
            events, complete = self._log_events(group, stream, start, end)
            if not complete:
                tail, _ = self._log_events(group, stream, max(start, end - TASK_LOG_TAIL), end)
                seen = {_event_key(e) for e in events}
                events += [e for e in tail if _event_key(e) not in seen]
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                # "The specified log group does not exist." / "The specified log stream does not exist."
                said = exc.response.get("Error", {}).get("Message", "").lower()
                return TaskLog(group, stream, hours, end, missing="log stream" if "stream" in said else "log group")
            raise GatewayError(f"FilterLogEvents failed: {_code(exc)}") from None
        except BotoCoreError as exc:  # timeouts, connection errors, missing credentials
            raise GatewayError(f"FilterLogEvents failed: {type(exc).__name__}") from None
        lines, kept, full = [], 0, False
        for event in sorted(events, key=lambda e: e.get("timestamp", 0), reverse=True):  # newest first
            text = event.get("message", "")[:TASK_LOG_LINE_CHARS].rstrip()
            found = _SEVERITY.search(text)
            if found is None or found.group(2) not in ("E", "W"):
                continue  # the pattern already asks for these; a line without a severity is not one
            kept += len(text.encode())
            if kept > TASK_LOG_BYTES:
                full = True
                break
            lines.append(LogLine(datetime.fromtimestamp(event["timestamp"] / 1000, timezone.utc),
                                 found.group(2), text))
        return TaskLog(group, stream, hours, end, tuple(reversed(lines)), more=full or not complete)

    def _log_events(self, group: str, stream: str, start: datetime, end: datetime) -> tuple[list[dict], bool]:
        """Every page of one FilterLogEvents window, up to TASK_LOG_EVENTS events and TASK_LOG_PAGES
        calls; whether the window was read to its end."""
        events: list[dict] = []
        token = None
        for _ in range(TASK_LOG_PAGES):
            kwargs: dict[str, Any] = {"logGroupName": group, "logStreamNames": [stream],
                                      "filterPattern": TASK_LOG_PATTERN, "startTime": _epoch_ms(start),
                                      "endTime": _epoch_ms(end), "limit": TASK_LOG_EVENTS - len(events)}
            if token:
                kwargs["nextToken"] = token
            resp = self._logs.filter_log_events(**kwargs)
            events += resp.get("events", [])
            token = resp.get("nextToken")
            if not token:
                return events, True
            if len(events) >= TASK_LOG_EVENTS:
                return events, False
        return events, False

    def latency_image(self, instance: str, task_resource_id: str, hours: int = 3) -> bytes:
        """The latency graph as a PNG rendered by CloudWatch itself (GetMetricWidgetImage)."""
        try:
            resp = self._cw.get_metric_widget_image(MetricWidget=latency_widget(instance, task_resource_id, hours),
                                                    OutputFormat="png")
        except ClientError as exc:
            raise GatewayError(f"GetMetricWidgetImage failed: {_code(exc)}") from None
        except BotoCoreError as exc:  # timeouts, connection errors
            raise GatewayError(f"GetMetricWidgetImage failed: {type(exc).__name__}") from None
        image = resp.get("MetricWidgetImage") or b""
        if not image.startswith(b"\x89PNG"):
            raise GatewayError("GetMetricWidgetImage returned no PNG")
        return image

    # Remediation calls -------------------------------------------------------------------------

    def start_task(self, task_arn: str, start_type: str = "resume-processing") -> str:
        try:
            resp = self._dms.start_replication_task(ReplicationTaskArn=task_arn, StartReplicationTaskType=start_type)
        except ClientError as exc:
            raise GatewayError(f"StartReplicationTask failed: {_code(exc)}") from None
        return resp["ReplicationTask"].get("Status", "")

    def stop_task(self, task_arn: str) -> str:
        try:
            resp = self._dms.stop_replication_task(ReplicationTaskArn=task_arn)
        except ClientError as exc:
            raise GatewayError(f"StopReplicationTask failed: {_code(exc)}") from None
        return resp["ReplicationTask"].get("Status", "")

    def reload_table(self, task_arn: str, schema: str, table: str) -> None:
        try:
            self._dms.reload_tables(
                ReplicationTaskArn=task_arn,
                TablesToReload=[{"SchemaName": schema, "TableName": table}],
                ReloadOption="data-reload",
            )
        except ClientError as exc:
            raise GatewayError(f"ReloadTables failed: {_code(exc)}") from None

    # Maintenance ------------------------------------------------------------------------------

    def instance_metrics(self, instance: str, now: datetime, hours: int = 24) -> dict[str, Series]:
        """The replication instance's CPUUtilization, FreeableMemory, FreeStorageSpace and SwapUsage
        in one GetMetricData call: hourly points, each with the statistic that shows trouble."""
        dims = [{"Name": "ReplicationInstanceIdentifier", "Value": instance}]
        queries = [
            {
                "Id": f"i{i}",
                "Label": metric,
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/DMS", "MetricName": metric, "Dimensions": dims},
                    "Period": 3600,
                    "Stat": stat,
                },
            }
            for i, (metric, stat) in enumerate(INSTANCE_METRICS.items())
        ]
        points = self._metric_points(queries, now - timedelta(hours=hours), now)
        return {metric: Series(metric, tuple(sorted(points.get(f"i{i}", ()))))
                for i, metric in enumerate(INSTANCE_METRICS)}


# Per-instance metrics (dimension ReplicationInstanceIdentifier only) and the statistic read for each:
# the hourly mean for CPU, the hourly low for what runs out, the hourly high for swap.
INSTANCE_METRICS = {
    "CPUUtilization": "Average",
    "FreeableMemory": "Minimum",
    "FreeStorageSpace": "Minimum",
    "SwapUsage": "Maximum",
}

def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "error")


def _event_key(event: dict) -> tuple:
    return (event.get("eventId") or "", event.get("timestamp"), event.get("message"))


def _epoch_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
