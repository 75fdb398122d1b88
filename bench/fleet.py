"""A synthetic fleet of N tables and stand-ins for every backend, placed where the gateways meet their
drivers (boto3 clients, the Snowflake connector's connect(), psycopg's connect()). Each round trip (an
AWS API call, a SQL statement, a database login) sleeps the same latency and is counted by operation, so
the gateways' own code (request building, pagination, batching, parsing) runs unchanged.

AWS requests are validated against botocore's model of the operation, as botocore does before sending;
SQL is answered only when it is exactly what the gateway builds, so a stand-in can never hide a change.

The fleet view is measured through real protocols instead (bench/protocols.py). These stand-ins stay
for what needs every round trip to cost exactly L and nothing else: one table's diagnosis against its
longest chain of dependent calls × L (through real servers each call also costs the server's own CPU,
moto's and fakesnow's, on the machine's shared cores, which would be counted as the bot's), the S3
check under 100 000 objects, and the serving measurements (acknowledgements, memory), where the
backends only have to be there."""
from __future__ import annotations

import bisect
import json
import threading
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, ParamValidationError
from botocore.validate import ParamValidator
from snowflake.connector.errors import ProgrammingError

from bot.catalog import Catalog, TableSpec, parse_catalog
from bot.gateways import Gateways, aurora as aurora_sql, snowflake as snowflake_sql
from bot.gateways.aurora import AuroraGateway
from bot.gateways.dms import DmsGateway
from bot.gateways.s3 import S3Gateway, cdc_name
from bot.gateways.snowflake import SnowflakeGateway

TABLES_PER_TASK = 100
BUCKET = "acme-cdc"
ACCOUNT_ARN = "arn:aws:dms:us-east-1:123456789012"
COLUMNS = (("id", "bigint", "NUMBER"), ("customer_id", "bigint", "NUMBER"), ("status", "character varying", "TEXT"),
           ("total", "numeric", "NUMBER"), ("created_at", "timestamp with time zone", "TIMESTAMP_TZ"),
           ("updated_at", "timestamp with time zone", "TIMESTAMP_TZ"))


class Backends:
    """One latency for every round trip (or one for a slow backend), and a count of round trips by
    (backend, operation)."""

    def __init__(self, latency_s: float = 0.0, slow: dict[str, float] | None = None):
        self.latency_s, self.slow = latency_s, slow or {}
        self.counts: Counter = Counter()
        self._lock = threading.Lock()

    def trip(self, backend: str, operation: str) -> None:
        with self._lock:
            self.counts[backend, operation] += 1
        delay = self.slow.get(backend, self.latency_s)
        if delay:
            time.sleep(delay)

    def reset(self) -> None:
        with self._lock:
            self.counts.clear()


@dataclass(frozen=True)
class TableState:
    paused: bool = False  # pipe paused, files piling up, final table stale: offers "Resume pipe"
    drift: bool = False  # Aurora has a column Snowflake lacks: offers "Add missing columns"


class Fleet:
    """N tables named t0000.., in DMS tasks of up to 100 tables; every tenth pipe is paused and every
    25th table has schema drift, so answers carry buttons and the fleet view has something to sort."""

    def __init__(self, tables: int, backends: Backends, now: datetime | None = None):
        self.now = now or datetime.now(timezone.utc)
        self.backends = backends
        self.catalog: Catalog = parse_catalog(catalog_toml(tables), "benchmark catalog")
        self.states = {spec.name: TableState(paused=i % 10 == 3, drift=i % 25 == 7)
                       for i, spec in enumerate(self.catalog.tables)}
        # Task ARNs end in a 38-character resource id, CloudWatch's name for the task.
        self.tasks = {name: f"{ACCOUNT_ARN}:task:" + (name.upper().replace("-", "") + "0" * 38)[:38]
                      for name in self.catalog.tasks()}
        self.by_pipe = {s.pipe: s for s in self.catalog.tables}
        self.by_staging = {s.staging_table: s for s in self.catalog.tables}
        self.by_final = {s.final_table: s for s in self.catalog.tables}
        self.by_source = {s.source: s for s in self.catalog.tables}
        self.s3 = FakeS3(backends)
        self.s3.put_many(BUCKET, [spec.s3_table_prefix + name for spec in self.catalog.tables for name in (
            "LOAD00000001.csv", *(cdc_name(self.now - timedelta(minutes=m)) for m in (58, 41, 27, 12, 3)))])

    def gateways(self, snowflake_pool: int = 4) -> Gateways:
        return Gateways(
            dms=DmsGateway(FakeDms(self), FakeCloudWatch(self), FakeLogs(self)),
            s3=S3Gateway(self.s3),
            snowflake=SnowflakeGateway(lambda: FakeSnowflake(self), snowflake_pool),
            aurora=AuroraGateway("postgresql://bench@aurora.invalid/app", connect=lambda dsn, **_: FakeAurora(self)),
        )

    def spec(self, table: str) -> TableSpec:
        found = self.catalog.find(table)
        assert found is not None, table
        return found

    def state_of_pipe(self, pipe: str) -> dict[str, Any]:
        paused = self.states[self.by_pipe[pipe].name].paused
        return {"executionState": "PAUSED" if paused else "RUNNING", "pendingFileCount": 37 if paused else 0,
                "lastIngestedTimestamp": (self.now - timedelta(minutes=170 if paused else 12)).isoformat()}


def catalog_toml(tables: int, bucket_per_task: bool = False) -> str:
    lines = ['[defaults]', 'dms_instance = "dms-prod"', f's3_bucket = "{BUCKET}"', 's3_prefix = "dms"', '']
    for i in range(tables):
        task = i // TABLES_PER_TASK
        lines += ["[[tables]]", f'name = "t{i:04d}"', f'source = "public.t{i:04d}"', f'dms_task = "cdc-{task:02d}"',
                  *([f's3_bucket = "{BUCKET}-{task:02d}"'] if bucket_per_task else []), ""]
    return "\n".join(lines)


# -- AWS -------------------------------------------------------------------------------------------

_MODELS: dict[str, Any] = {}
_MODELS_LOCK = threading.Lock()


class _Aws:
    service = ""

    def __init__(self, backends: Backends):
        self._backends = backends
        with _MODELS_LOCK:
            if self.service not in _MODELS:
                _MODELS[self.service] = botocore.session.get_session().get_service_model(self.service)
        self._model = _MODELS[self.service]

    def _request(self, operation: str, params: dict[str, Any]) -> None:
        report = ParamValidator().validate(params, self._model.operation_model(operation).input_shape)
        if report.has_errors():
            raise ParamValidationError(report=report.generate_report())
        self._backends.trip(self.service, operation)


def _client_error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


SOURCE_ENDPOINT = "arn:aws:dms:us-east-1:123456789012:endpoint:AURORASOURCE"
TARGET_ENDPOINT = "arn:aws:dms:us-east-1:123456789012:endpoint:S3TARGET"
INSTANCE_ARN = "arn:aws:dms:us-east-1:123456789012:rep:DMSPROD"


class FakeDms(_Aws):
    service = "dms"

    def __init__(self, fleet: Fleet):
        super().__init__(fleet.backends)
        self._fleet = fleet

    def describe_replication_tasks(self, **params: Any) -> dict[str, Any]:
        self._request("DescribeReplicationTasks", params)
        wanted = {v for f in params.get("Filters", []) if f["Name"] == "replication-task-id" for v in f["Values"]}
        found = [{"ReplicationTaskIdentifier": name, "ReplicationTaskArn": arn, "Status": "running",
                  "MigrationType": "full-load-and-cdc", "SourceEndpointArn": SOURCE_ENDPOINT,
                  "TargetEndpointArn": TARGET_ENDPOINT, "ReplicationInstanceArn": INSTANCE_ARN,
                  "ReplicationTaskStats": {"FullLoadProgressPercent": 100, "TablesLoaded": TABLES_PER_TASK,
                                           "TablesLoading": 0, "TablesQueued": 0, "TablesErrored": 0}}
                 for name, arn in self._fleet.tasks.items() if name in wanted]
        if not found:
            raise _client_error("ResourceNotFoundFault", "DescribeReplicationTasks", "No Tasks found")
        return {"ReplicationTasks": found}

    def describe_endpoints(self, **params: Any) -> dict[str, Any]:
        """The fleet's two endpoints, as DescribeEndpoints returns them (the catalog's bucket and prefix
        override the target's)."""
        self._request("DescribeEndpoints", params)
        wanted = {v for f in params.get("Filters", []) if f["Name"] == "endpoint-arn" for v in f["Values"]}
        endpoints = [{"EndpointIdentifier": "aurora", "EndpointType": "SOURCE", "EngineName": "aurora-postgresql",
                      "EndpointArn": SOURCE_ENDPOINT, "PostgreSQLSettings": {"DatabaseName": "app"}},
                     {"EndpointIdentifier": "s3", "EndpointType": "TARGET", "EngineName": "s3",
                      "EndpointArn": TARGET_ENDPOINT, "S3Settings": {"BucketName": BUCKET, "BucketFolder": "dms"}}]
        return {"Endpoints": [e for e in endpoints if e["EndpointArn"] in wanted]}

    def describe_replication_instances(self, **params: Any) -> dict[str, Any]:
        self._request("DescribeReplicationInstances", params)
        return {"ReplicationInstances": [{"ReplicationInstanceIdentifier": "dms-prod",
                                          "ReplicationInstanceArn": INSTANCE_ARN}]}

    def describe_table_statistics(self, **params: Any) -> dict[str, Any]:
        self._request("DescribeTableStatistics", params)
        name = next(n for n, arn in self._fleet.tasks.items() if arn == params["ReplicationTaskArn"])
        specs = self._fleet.catalog.tasks()[name]
        size, start = params.get("MaxRecords", 100), int(params.get("Marker") or 0)
        page = [{"SchemaName": s.source_schema, "TableName": s.source_table, "TableState": "Table completed",
                 "Inserts": 1200, "Updates": 340, "Deletes": 12, "FullLoadRows": 50_000, "FullLoadErrorRows": 0,
                 "LastUpdateTime": self._fleet.now - timedelta(minutes=3)} for s in specs[start:start + size]]
        body: dict[str, Any] = {"ReplicationTaskArn": params["ReplicationTaskArn"], "TableStatistics": page}
        if start + size < len(specs):
            body["Marker"] = str(start + size)
        return body


class FakeCloudWatch(_Aws):
    service = "cloudwatch"

    def __init__(self, fleet: Fleet):
        super().__init__(fleet.backends)
        self._fleet = fleet

    def get_metric_data(self, **params: Any) -> dict[str, Any]:
        self._request("GetMetricData", params)
        queries = params["MetricDataQueries"]
        if len(queries) > 500:
            raise _client_error("ValidationError", "GetMetricData", "at most 500 MetricDataQueries")
        stamps = [self._fleet.now - timedelta(minutes=5 * (12 - i) - 2) for i in range(12)]
        return {"MetricDataResults": [{"Id": q["Id"], "Label": q.get("Label", ""), "StatusCode": "Complete",
                                       "Timestamps": stamps, "Values": [4.0 + i % 3 for i in range(12)]}
                                      for q in queries], "Messages": []}


class FakeLogs(_Aws):
    """CloudWatch Logs. Every task of the fleet runs, so a diagnosis should never read a task log:
    the calls are counted like the others and answered with no lines."""

    service = "logs"

    def __init__(self, fleet: Fleet):
        super().__init__(fleet.backends)

    def filter_log_events(self, **params: Any) -> dict[str, Any]:
        self._request("FilterLogEvents", params)
        return {"events": [], "searchedLogStreams": []}


    def get_metric_widget_image(self, **params: Any) -> dict[str, Any]:
        """The latency picture posted after a table's diagnosis: a fixed PNG, as CloudWatch returns one."""
        self._request("GetMetricWidgetImage", params)
        return {"MetricWidgetImage": b"\x89PNG\r\n\x1a\n" + bytes(64)}


class FakeS3(_Aws):
    """ListObjectsV2 over sorted keys: Prefix, StartAfter, ContinuationToken, MaxKeys up to 1000."""

    service = "s3"

    def __init__(self, backends: Backends):
        super().__init__(backends)
        self._keys: dict[str, list[str]] = {}
        self.keys_returned = 0

    def put_many(self, bucket: str, keys: list[str]) -> None:
        self._keys[bucket] = sorted(set(self._keys.get(bucket, [])) | set(keys))

    def list_objects_v2(self, **params: Any) -> dict[str, Any]:
        self._request("ListObjectsV2", params)
        keys = self._keys.get(params["Bucket"])
        if keys is None:
            raise _client_error("NoSuchBucket", "ListObjectsV2")
        prefix, limit = params.get("Prefix", ""), min(params.get("MaxKeys", 1000), 1000)
        after = max(params.get("StartAfter", ""), params.get("ContinuationToken", ""))
        start = bisect.bisect_right(keys, after) if after >= prefix else bisect.bisect_left(keys, prefix)
        page = []
        for key in keys[start:start + limit + 1]:
            if not key.startswith(prefix):
                break
            page.append(key)
        truncated = len(page) > limit
        page = page[:limit]
        self.keys_returned += len(page)
        body: dict[str, Any] = {"IsTruncated": truncated, "KeyCount": len(page), "Prefix": prefix, "MaxKeys": limit,
                                "Contents": [{"Key": k, "Size": 1024, "StorageClass": "STANDARD"} for k in page]}
        if truncated:
            body["NextContinuationToken"] = page[-1]
        return body


# -- Snowflake -------------------------------------------------------------------------------------

class FakeSnowflake:
    """A connection from the Snowflake connector's point of view: cursor(), execute(sql, params)."""

    def __init__(self, fleet: Fleet):
        self._fleet = fleet
        fleet.backends.trip("snowflake", "login")
        self._rows: list[tuple] = []

    def cursor(self) -> FakeSnowflake:
        return self

    def close(self) -> None:
        pass

    def fetchall(self) -> list[tuple]:
        return self._rows

    def execute(self, sql: str, params: tuple = ()) -> None:
        n = len(params)
        answers = {
            snowflake_sql.pipe_statuses_sql(n): ("SYSTEM$PIPE_STATUS", self._pipes),
            snowflake_sql.copy_histories_sql(n // 3): ("COPY_HISTORY", self._history),
            snowflake_sql.newest_many_sql(n // 2): ("MAX(freshness column)", self._newest),
            snowflake_sql.column_types_many_sql(n // 2): ("information_schema.columns", self._column_types),
            snowflake_sql.row_counts_sql(n): ("COUNT(*) of final tables", self._counts),
            snowflake_sql.task_histories_sql(n // 4): ("TASK_HISTORY", self._task_runs),
            snowflake_sql.SHOW_TASKS_SQL: ("SHOW TASKS", self._tasks),
        }
        # The single-table statements too (the gateway keeps them), one table's answer each.
        answers.update({
            snowflake_sql.COPY_HISTORY_SQL: ("COPY_HISTORY",
                                             lambda p: [r[1:] for r in self._history([p[0], p[0], p[1]])]),
            snowflake_sql.COLUMNS_SQL: ("information_schema.columns", lambda p: [r[2:] for r in self._columns(p)]),
        })
        if sql not in answers:
            raise ProgrammingError(msg="the benchmark's Snowflake stand-in does not know this statement",
                                   errno=1003, sqlstate="42000")
        operation, answer = answers[sql]
        self._fleet.backends.trip("snowflake", operation)
        self._rows = answer(list(params))

    # SHOW TASKS' columns (Snowflake's reference for SHOW TASKS), as the connector describes them.
    description = [(c,) for c in ("created_on", "name", "id", "database_name", "schema_name", "owner", "comment",
                                  "warehouse", "schedule", "predecessors", "state", "definition", "condition")]

    def _tasks(self, params: list) -> list[tuple]:
        return [(self._fleet.now, spec.merge_task.split(".")[1], "01b", "SYNC", spec.merge_task.split(".")[0],
                 "SYNC_LOADER", None, "SYNC_WH", "1 MINUTE", "[]", "started", "MERGE INTO …", None)
                for spec in self._fleet.catalog.tables]

    def _task_runs(self, params: list) -> list[tuple]:
        now = self._fleet.now.replace(tzinfo=None)
        return [(label, "SUCCEEDED", now - timedelta(minutes=m), now - timedelta(minutes=m, seconds=-20), None, None)
                for label in params[::4] for m in (1, 2, 3)]

    def _counts(self, params: list) -> list[tuple]:
        return [tuple(50_000 for _ in params)]

    def _column_types(self, params: list) -> list[tuple]:
        sizes = {"TEXT": (16_777_216, None, None), "NUMBER": (None, 38, 2)}
        return [(schema, name, sf_name.upper(), sf_type, *sizes.get(sf_type, (None, None, None)))
                for schema, name in zip(params[::2], params[1::2]) for sf_name, _, sf_type in COLUMNS]

    def _pipes(self, pipes: list[str]) -> list[tuple]:
        return [tuple(json.dumps(self._fleet.state_of_pipe(p)) for p in pipes)]

    def _history(self, params: list) -> list[tuple]:
        rows = []
        for label in params[::3]:
            spec = self._fleet.by_staging[label]
            minutes = (170,) if self._fleet.states[spec.name].paused else (41, 27, 12)
            rows += [(label, f"{spec.s3_table_prefix}{cdc_name(self._fleet.now - timedelta(minutes=m))}", "Loaded",
                      120, None, (self._fleet.now - timedelta(minutes=m - 1)).replace(tzinfo=None)) for m in minutes]
        return rows

    def _newest(self, params: list) -> list[tuple]:
        stale = [self._fleet.states[self._fleet.by_final[table].name].paused for table in params[1::2]]
        return [tuple(self._fleet.now - timedelta(minutes=185 if late else 4) for late in stale)]

    def _columns(self, params: list) -> list[tuple]:
        return [(schema, name, sf_name.upper(), sf_type) for schema, name in zip(params[::2], params[1::2])
                for sf_name, _, sf_type in COLUMNS]


# -- Aurora ----------------------------------------------------------------------------------------

class FakeAurora:
    """A psycopg connection from the gateway's point of view: a login per connect, then execute()."""

    def __init__(self, fleet: Fleet):
        self._fleet = fleet
        fleet.backends.trip("aurora", "login")

    def __enter__(self) -> FakeAurora:
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def execute(self, sql: str, params: tuple = ()) -> FakeAurora:
        if sql == aurora_sql.COLUMNS_MANY_SQL:
            self._fleet.backends.trip("aurora", "information_schema.columns")
            self._rows = [row for schema, table in zip(*params) for row in self._columns(schema, table)]
        elif sql == aurora_sql.COLUMNS_SQL:
            self._fleet.backends.trip("aurora", "information_schema.columns")
            self._rows = [row[2:] for row in self._columns(*params)]
        elif sql == aurora_sql.ROW_COUNTS_SQL:
            self._fleet.backends.trip("aurora", "row counts")
            self._rows = [(schema, table, 50_000, 50_000, None) for schema, table in zip(*params[1:])]
        elif sql == "SHOW server_version_num":  # the slot query's columns depend on it (pg_replication_slots)
            self._rows = [("150007",)]
        elif sql == aurora_sql.SLOTS_SQL:
            self._fleet.backends.trip("aurora", "pg_replication_slots")
            self._rows = [("dms_slot_cdc", "test_decoding", "app", True, "reserved", None, 48 * 1024**2)]
        else:
            raise AssertionError("the benchmark's Aurora stand-in does not know this statement")
        return self

    def fetchall(self) -> list[tuple]:
        return self._rows

    def fetchone(self) -> tuple | None:
        return self._rows[0] if self._rows else None

    def _columns(self, schema: str, table: str) -> list[tuple]:
        spec = self._fleet.by_source.get(f"{schema}.{table}")
        drift = spec is not None and self._fleet.states[spec.name].drift
        extra = [("discount_code", "character varying", 64, None, None)] if drift else []
        sizes = {"character varying": (32, None, None), "numeric": (None, 12, 2), "bigint": (None, 64, 0)}
        return [(schema, table, name, pg_type, *sizes.get(pg_type, (None, None, None)))
                for name, pg_type, _ in COLUMNS] + [(schema, table, *col) for col in extra]
