"""Builds a whole pipeline from a scenario: DMS, CloudWatch and S3 in moto, Snowflake tables in
fakesnow (with Snowpipe telemetry, which fakesnow lacks, faked at the gateway seam), and Aurora as
either a scripted catalog or a real PostgreSQL database."""
from __future__ import annotations

import json
import re
import warnings
from collections import Counter
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import boto3
import psycopg
from fakesnow.instance import FakeSnow
from moto import mock_aws

from bot.catalog import Catalog, TableSpec, parse_catalog
from bot.diagnostics.typemap import snowflake_type
from bot.gateways import GatewayError, Gateways, NotFound
from bot.gateways.aurora import AuroraGateway, PgColumn, RowCount, Slot, VacuumStats
from bot.gateways.dms import DmsGateway, task_log_names
from bot.diagnostics.layout import locate
from bot.gateways.endpoints import S3Target, s3_target
from bot.gateways.s3 import CdcLayout, S3Gateway, cdc_name, partition_folder
from bot.gateways.snowflake import (
    FORCE_RESUME_SQL, TASK_RUNS, LoadRecord, PipeStatus, Refused, SnowflakeGateway, TaskRun, TaskState,
    parse_pipe_status,
)

from . import maintenance, moto_dms, moto_logs, picture
from .scenarios import SCENARIOS, Scenario, TableWorld
from .seams import count_aws, counting_connect, counting_cursors

# fakesnow's cursor fetches rows through DuckDB's Arrow export, which warns on every such fetch that
# it copies the rows (a performance hint to fakesnow's authors, nothing a console user can act on).
# Only this message, only from fakesnow's modules, and only once the sandbox is loaded.
warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning,
                        module=r"fakesnow\.")

REGION = "us-east-1"
CATALOG_TOML = """\
[defaults]
dms_task = "aurora-snowflake-cdc"
freshness_threshold_minutes = 120

[[tables]]
name = "orders"
source = "public.orders"

[[tables]]
name = "customers"
source = "public.customers"

[[tables]]
name = "payments"
source = "public.payments"

[access]
approvers = ["U0ALICE01", "U0BOB0002", "U0CAROL03"]
approval_ttl_minutes = 30

[alerts]
channels = ["C0ALERTS1"]
"""


AURORA_ROWS = 2  # rows in each sandbox source table; a re-sync brings the final table to as many
# The task as created in moto: the catalog names none of these, the bot reads them from DMS.
INSTANCE, BUCKET, FOLDER, SOURCE_DATABASE = "dms-prod", "acme-cdc", "dms", "app"


def cdc_key(spec: TableSpec, moment: datetime) -> str:
    """Where DMS puts a CDC file written at `moment` in the flat layout under the catalog's prefix:
    <prefix>/<schema>/<table>/YYYYMMDD-HHMMSSsss.csv (the benchmark's fleet writes these)."""
    return spec.s3_table_prefix + cdc_name(moment)


def layout_key(layout: CdcLayout, settings: S3Target, moment: datetime) -> str:
    """Where DMS puts a CDC file written at `moment` in the endpoint's layout: its date folder and its
    name in DatePartitionTimezone, its extension from DataFormat and CompressionType."""
    local = moment.astimezone(layout.tz)
    folder = layout.cdc_base + (partition_folder(layout.partition, layout.delimiter, local) if layout.partition else "")
    extension = ".parquet" if settings.data_format == "parquet" else ".csv"
    extension += ".gz" if settings.compression == "GZIP" else ""
    return folder + cdc_name(local, extension, shared=layout.shared)


class SandboxSnowflake(SnowflakeGateway):
    """Real SQL against fakesnow for tables; Snowpipe's telemetry and pipe DDL from memory."""

    def __init__(self, fake: FakeSnow, pipes: dict[str, dict], history: dict[str, list[LoadRecord]],
                 definitions: dict[tuple[str, str], str], tasks: dict[str, dict] | None = None,
                 calls: Counter | None = None):
        """`calls`: where its statements and its faked reads are counted (seams.py), a faked read as the
        one statement it stands for."""
        self._calls = Counter() if calls is None else calls
        super().__init__(counting_cursors(lambda: fake.connect(database="SYNC", schema="PUBLIC"), self._calls))
        self.pipes, self.history, self.definitions = pipes, history, definitions
        # Merge tasks as SHOW TASKS and TASK_HISTORY would show them (fakesnow has neither):
        # name -> {"state", "schedule", "runs": [TaskRun, newest first]}.
        self.tasks = tasks or {}
        self.statements: list[str] = []  # pipe DDL and loads seen, for tests and the console
        # Bulk COPY's load metadata per table (file base names): COPY skips them, TRUNCATE clears them.
        self.table_loaded: dict[str, set[str]] = {}
        self.delivered: Callable[[str, str], None] = lambda table, name: None  # a file's rows reach staging
        self.statement_timeouts: list[int] = []  # STATEMENT_TIMEOUT_IN_SECONDS of bounded statements

    def pipe_status(self, pipe: str) -> PipeStatus:
        self._calls["snowflake", "pipe_status"] += 1
        from bot.gateways.snowflake import parse_pipe_status

        return parse_pipe_status(json.dumps(self.pipes[pipe.upper()]))

    def copy_history(self, table: str, hours: int = 4) -> list[LoadRecord]:
        self._calls["snowflake", "copy_history"] += 1
        cutoff = datetime.now(timezone.utc) - timedelta(hours=hours)
        return [r for r in self.history.get(table.upper(), []) if r.last_load_time and r.last_load_time >= cutoff]

    def pipe_loads(self, table: str, pipe: str, days: int = 14) -> list[LoadRecord]:
        self._calls["snowflake", "pipe_loads"] += 1
        cutoff = datetime.now(timezone.utc) - timedelta(days=days)
        name = pipe.upper().split(".")[-1]
        return [r for r in self.history.get(table.upper(), []) if r.pipe == name and "LOAD" in r.file_name
                and r.last_load_time and r.last_load_time >= cutoff]

    def snowpipe_notified(self, table: str, pipe: str, key: str) -> bool:
        """Snowpipe told of a file: it loads a name its pipe has not loaded in the last 14 days, and skips
        one it has, whatever the file holds now (its load metadata is per pipe, by path and name)."""
        if any(r.file_name == key for r in self.pipe_loads(table, pipe)):
            return False
        self.history.setdefault(table.upper(), []).append(
            LoadRecord(key, "Loaded", 1, "", datetime.now(timezone.utc), pipe.upper().split(".")[-1]))
        self.delivered(table.upper(), key.rsplit("/", 1)[-1])
        return True

    # The multi-table reads, one statement's worth each, as the real gateway answers them: a missing
    # pipe costs only its own answer.

    def pipe_statuses(self, pipes: list[str]) -> dict[str, PipeStatus | GatewayError]:
        self._calls["snowflake", "pipe_statuses"] += 1
        return {pipe: parse_pipe_status(json.dumps(self.pipes[pipe.upper()])) if pipe.upper() in self.pipes
                else NotFound(f"Pipe '{pipe}' does not exist or not authorized.") for pipe in pipes}

    def copy_histories(self, tables: list[str], hours: int = 4) -> dict[str, list[LoadRecord] | GatewayError]:
        self._calls["snowflake", "copy_histories"] += 1
        cutoff = datetime.now(timezone.utc) - timedelta(hours=hours)
        return {table: [r for r in self.history.get(table.upper(), []) if r.last_load_time and r.last_load_time >= cutoff]
                for table in tables}

    def task_states(self, tasks: list[str]) -> dict[str, TaskState | None]:
        self._calls["snowflake", "task_states"] += 1
        found: dict[str, TaskState | None] = {}
        for task in tasks:
            entry = self.tasks.get(task.upper())
            if entry is None:
                found[task] = None
                continue
            root = entry.get("root") or task.upper()
            found[task] = TaskState(task.upper(), entry["state"], entry["schedule"], entry.get("root", ""),
                                    entry.get("id", ""), entry.get("suspended_reason", ""), root,
                                    self.tasks.get(root, entry).get("id", ""), self.tasks.get(root, entry)["state"])
        return found

    def task_histories(self, tasks: list[str], hours: int = 24) -> dict[str, list[TaskRun] | GatewayError]:
        """As TASK_HISTORY(TASK_NAME=>…, ROOT_TASK_ID=>…) answers: every database's runs of a task of that
        name ("runs" here, "elsewhere" the cloned database's), narrowed to this task's graph by its root id."""
        self._calls["snowflake", "task_histories"] += 1
        found: dict[str, list[TaskRun] | GatewayError] = {}
        for task in tasks:
            entry = self.tasks.get(task.upper(), {})
            every = [(run, entry.get("root_id", "")) for run in entry.get("runs", [])]
            every += [(run, "elsewhere") for run in entry.get("elsewhere", [])]
            mine = sorted((run for run, root in every if root == entry.get("root_id", "")),
                          key=lambda r: r.scheduled_at or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
            found[task] = mine[:TASK_RUNS]
        return found

    def execute(self, sql: str, params: tuple = ()) -> None:
        """Pipe and task DDL and COPY need a real Snowpipe: played here. Everything else runs in fakesnow."""
        self.statements.append(sql % tuple(repr(p) for p in params) if params else sql)
        paused = re.match(r"ALTER PIPE (\S+) SET PIPE_EXECUTION_PAUSED = (TRUE|FALSE)$", sql)
        if paused:
            self.pipes[paused.group(1)]["executionState"] = "PAUSED" if paused.group(2) == "TRUE" else "RUNNING"
            return
        if sql == FORCE_RESUME_SQL:
            self.pipes[params[0]]["executionState"] = "RUNNING"
            return
        altered = re.match(r"ALTER TASK (\S+) (RESUME|SUSPEND)$", sql)
        if altered:
            task = self.tasks[altered.group(1)]
            root = self.tasks.get(task.get("root", ""))
            if altered.group(2) == "RESUME" and root is not None and root["state"] == "started":
                # Snowflake refuses a child task's resume while its graph's root runs
                # (https://docs.snowflake.com/en/user-guide/tasks-graphs).
                raise Refused(f"Unable to update graph with root task SYNC.{task['root']} since that root task "
                              "is not suspended.")
            task["state"] = "started" if altered.group(2) == "RESUME" else "suspended"
            return
        if sql.upper().startswith("COPY INTO"):
            self._load(sql.split()[2].upper(), list(params))
            return
        if sql.upper().startswith("TRUNCATE TABLE"):
            self.table_loaded.pop(sql.split()[2].upper(), None)  # TRUNCATE clears the table's load metadata
        super().execute(sql, params)

    def execute_bounded(self, sql: str, timeout_s: int) -> None:
        """fakesnow has no session parameters: the bound is recorded, the statement runs in fakesnow."""
        self.statement_timeouts.append(timeout_s)
        self.execute(sql)

    def definition(self, kind: str, name: str) -> str:
        self._calls["snowflake", "definition"] += 1
        from bot.gateways import NotFound

        found = self.definitions.get((kind, name.upper()))
        if found is None:
            raise NotFound(f"{kind.lower()} {name} not found")
        return found

    def _load(self, table: str, names: list[str]) -> None:
        """COPY INTO … FILES: each named file not in the table's load metadata is loaded, a new row in
        COPY_HISTORY (one per attempt); one already loaded is skipped, as COPY without FORCE does."""
        now = datetime.now(timezone.utc)
        loaded = self.table_loaded.setdefault(table, set())
        for name in names:
            base = name.rsplit("/", 1)[-1]
            if base in loaded:
                continue
            loaded.add(base)
            key = next((r.file_name for r in self.history.get(table, []) if r.file_name.endswith(name)), name)
            self.history.setdefault(table, []).append(LoadRecord(key, "Loaded", 120, "", now))
            self.delivered(table, base)


class SandboxDms(DmsGateway):
    """The real DMS gateway on moto, but with the latency graph drawn here: moto does not render
    GetMetricWidgetImage."""

    def __init__(self, dms_client: Any, cloudwatch_client: Any, logs_client: Any, latency: tuple[float, ...]):
        super().__init__(dms_client, cloudwatch_client, logs_client)
        self.latency, self.rendered = latency, 0

    def latency_image(self, instance: str, task_resource_id: str, hours: int = 3) -> bytes:
        self.rendered += 1
        return picture.bars_png(self.latency)


class ScriptedAurora:
    """The Aurora gateway's interface, answered from the scenario (the console needs no database)."""

    def __init__(self, columns: dict[str, list[PgColumn]], slots: list[Slot], rows: dict[str, int] | None = None,
                 calls: Counter | None = None):
        """`slots`: pg_replication_slots as the scenario has it (the task's and any others). `calls`: where
        its answers are counted, as ("aurora", method), like a real database's logins."""
        self._columns, self._slots, self._rows = columns, slots, rows or {}
        self._calls = Counter() if calls is None else calls

    def _count(self, method: str) -> None:
        self._calls["aurora", method] += 1

    def row_counts(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], RowCount | GatewayError]:
        self._count("row_counts")
        return {(schema, table): RowCount(self._rows[f"{schema}.{table}"], True) if f"{schema}.{table}" in self._rows
                else NotFound(f"Aurora table {schema}.{table} not found") for schema, table in tables}

    def columns(self, schema: str, table: str) -> list[PgColumn]:
        self._count("columns")
        from bot.gateways import NotFound

        try:
            return self._columns[f"{schema}.{table}"]
        except KeyError:
            raise NotFound(f"Aurora table {schema}.{table} not found") from None

    def columns_many(self, tables: list[tuple[str, str]]) -> dict[tuple[str, str], list[PgColumn] | GatewayError]:
        self._count("columns_many")
        return {(schema, table): self._columns.get(f"{schema}.{table}") or NotFound(
                    f"Aurora table {schema}.{table} not found") for schema, table in tables}

    def replication_slots(self, server_version: int | None = None) -> list[Slot]:
        self._count("replication_slots")
        return list(self._slots)

    def row_estimate(self, schema: str, table: str) -> int | None:
        self._count("row_estimate")
        return self._rows.get(f"{schema}.{table}", AURORA_ROWS)

    def row_count(self, schema: str, table: str) -> int | None:
        self._count("row_count")
        return self._rows.get(f"{schema}.{table}", AURORA_ROWS)

    def vacuum_stats(self, sources: list[str]) -> dict[str, VacuumStats]:
        self._count("vacuum_stats")
        return maintenance.scripted_vacuum(sources, datetime.now(timezone.utc))


class Sandbox:
    def __init__(self, scenario: str | Scenario = "healthy", aurora_dsn: str | None = None,
                 now: datetime | None = None):
        self.scenario = SCENARIOS[scenario] if isinstance(scenario, str) else scenario
        self.now = now or datetime.now(timezone.utc)
        self.catalog: Catalog = parse_catalog(CATALOG_TOML, "sandbox catalog")
        moto_dms.install()
        moto_logs.install()
        self._mock = mock_aws()
        self._mock.start()
        self.calls: Counter = Counter()  # (backend, operation) -> calls, counted where they leave (seams.py)
        self.dms_client = _client("dms", self.calls)
        self.cloudwatch_client = _client("cloudwatch", self.calls)
        self.logs_client = _client("logs", self.calls)
        self.s3_client = _client("s3", self.calls)
        self.fakesnow = FakeSnow()
        self.task_arn = self._seed_dms()
        self.seed_task_log()
        self._seed_s3()
        pipes, history, definitions = self._seed_snowflake()
        self.snowflake = SandboxSnowflake(self.fakesnow, pipes, history, definitions, self._tasks(),
                                          self.calls)
        self.snowflake.delivered = self._delivered
        self.full_load_loads: dict[str, int] = {}
        moto_dms.reload_hooks.append(self._reload_done)
        self.aurora = self._seed_aurora(aurora_dsn)
        maintenance.seed(self)
        self.gateways = Gateways(
            dms=SandboxDms(self.dms_client, self.cloudwatch_client, self.logs_client, self.scenario.latency_seconds),
            s3=S3Gateway(self.s3_client),
            snowflake=self.snowflake,
            aurora=self.aurora,
        )

    def world(self, spec: TableSpec) -> TableWorld:
        return self.scenario.tables[spec.name]

    def close(self) -> None:
        moto_dms.reload_hooks.remove(self._reload_done)
        self._mock.stop()

    def full_load_key(self, spec: TableSpec, n: int) -> str:
        return f"{self.layout(spec).table_prefix}LOAD{n:08X}.csv"

    def _reload_done(self, task: Any, stat: dict[str, Any]) -> None:
        """Plays DMS writing the reloaded full-load files again under the same names, and Snowpipe told
        of each: it loads the names its pipe does not know and skips the others (the re-sync's COPY
        loads those). A loaded file's rows reach the final table (the merge)."""
        if task.arn != self.task_arn:
            return
        spec = self.catalog.find(f"{stat['SchemaName']}.{stat['TableName']}")
        self.full_load_loads = {}  # base name -> times its rows reached the final table, for tests
        for n in range(1, self.world(spec).full_load_files + 1):
            key = self.full_load_key(spec, n)
            self.s3_client.put_object(Bucket=self.layout(spec).bucket, Key=key, Body=b"reloaded")
            self.snowflake.snowpipe_notified(spec.staging_table, spec.pipe, key)
        stamp = datetime.now(timezone.utc)
        self.s3_client.put_object(Bucket=self.layout(spec).bucket, Key=self.cdc_key(spec, stamp), Body=b"I,1\n")

    def _delivered(self, staging_table: str, name: str) -> None:
        """A full-load file's share of Aurora's rows reaches the final table (Snowpipe or COPY, then the merge)."""
        spec = next((s for s in self.catalog.tables if s.staging_table.upper() == staging_table), None)
        match = re.match(r"^LOAD([0-9A-F]{8})\.csv$", name)
        if spec is None or match is None:
            return
        files, n = self.world(spec).full_load_files, int(match.group(1), 16)
        loads = getattr(self, "full_load_loads", {})
        loads[name] = loads.get(name, 0) + 1
        self.full_load_loads = loads
        total = self._aurora_rows(spec)
        first, last = (n - 1) * total // files, n * total // files  # this file's share of the ids
        if last <= first:
            return
        cur = self.fakesnow.connect(database="SYNC", schema="PUBLIC").cursor()
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        cur.execute(f"INSERT INTO {spec.final_table} (ID, {spec.freshness_column}) SELECT SEQ4() + {first + 1:d}, %s "
                    f"FROM TABLE(GENERATOR(ROWCOUNT => {last - first:d}))", (now,))
        cur.close()

    # -- AWS ---------------------------------------------------------------------------------------

    def dms_task(self, arn: str | None = None) -> Any:
        """moto's model of the task, for tests and the console to inspect or change."""
        from moto.dms.models import dms_backends

        return dms_backends["123456789012"][REGION].replication_tasks[arn or self.task_arn]

    def _seed_dms(self) -> str:
        """The task as DMS is configured: an S3 target endpoint with S3Settings and a PostgreSQL source
        endpoint with PostgreSQLSettings, made with CreateEndpoint (botocore checks the settings against
        the service model), on an instance the catalog does not name."""
        s = self.scenario
        [task_name] = {spec.dms_task for spec in self.catalog.tables}  # the sandbox has one task
        instance = self.dms_client.create_replication_instance(
            ReplicationInstanceIdentifier=INSTANCE, ReplicationInstanceClass="dms.t3.medium")
        pg = {"DatabaseName": SOURCE_DATABASE, "PluginName": "test_decoding", **(
            {"SlotName": s.slot_name} if s.slot_name else {})}
        source = self.dms_client.create_endpoint(
            EndpointIdentifier="aurora", EndpointType="source", EngineName="aurora-postgresql",
            DatabaseName=SOURCE_DATABASE, PostgreSQLSettings=pg)["Endpoint"]["EndpointArn"]
        target = self.dms_client.create_endpoint(
            EndpointIdentifier="s3", EndpointType="target", EngineName="s3",
            S3Settings=self.s3_settings_given())["Endpoint"]["EndpointArn"]
        task = self.dms_client.create_replication_task(
            ReplicationTaskIdentifier=task_name, SourceEndpointArn=source,
            TargetEndpointArn=target, MigrationType=s.migration_type,
            ReplicationInstanceArn=instance["ReplicationInstance"]["ReplicationInstanceArn"],
            TableMappings=json.dumps({"rules": []}))["ReplicationTask"]
        arn = task["ReplicationTaskArn"]
        if not s.never_ran:
            self.dms_client.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
        model = self.dms_task(arn)
        model.status = s.task_status
        model.stop_reason, model.last_failure_message, model.tables_errored = s.stop_reason, s.failure, s.tables_errored
        model.table_statistics = [self._table_stat(spec) for spec in self.catalog.tables]
        if s.stopped_minutes_ago is not None:
            model.stop_date = self.now - timedelta(minutes=s.stopped_minutes_ago)
        resource_id = arn.rsplit(":", 1)[-1]
        points = len(s.latency_seconds)
        for metric in ("CDCLatencySource", "CDCLatencyTarget"):
            self.cloudwatch_client.put_metric_data(Namespace="AWS/DMS", MetricData=[{
                "MetricName": metric,
                "Dimensions": [{"Name": "ReplicationInstanceIdentifier", "Value": INSTANCE},
                               {"Name": "ReplicationTaskIdentifier", "Value": resource_id}],
                "Timestamp": self.now - timedelta(minutes=5 * (points - i) - 2),
                "Value": value, "Unit": "Seconds"} for i, value in enumerate(s.latency_seconds)])
        return arn

    def seed_task_log(self) -> None:
        """The scenario's task log where DMS writes it when Logging.EnableLogging is on (tests that
        turn logging off delete the group; this puts it back)."""
        group, stream = task_log_names(INSTANCE, self.task_arn.rsplit(":", 1)[-1])
        self.logs_client.create_log_group(logGroupName=group)
        self.logs_client.create_log_stream(logGroupName=group, logStreamName=stream)
        events = []
        for first, last, every, line in self.scenario.task_log:
            for minutes in range(first, last - 1, -every):
                at = self.now - timedelta(minutes=minutes)
                events.append({"timestamp": int(at.timestamp() * 1000), "message": f"{at:%Y-%m-%dT%H:%M:%S} {line}"})
        events.sort(key=lambda e: e["timestamp"])  # PutLogEvents wants them in order
        if events:
            self.logs_client.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)

    def _table_stat(self, spec: TableSpec) -> dict[str, Any]:
        world = self.world(spec)
        return {"SchemaName": spec.source_schema, "TableName": spec.source_table, "TableState": world.table_state,
                "Inserts": 1200, "Updates": 340, "Deletes": 12, "FullLoadRows": AURORA_ROWS, "FullLoadErrorRows": 0,
                "FullLoadStartTime": (self.now - timedelta(days=3)).isoformat(),
                "LastUpdateTime": (self.now - timedelta(minutes=min(world.file_minutes_ago or (0,)))).isoformat()}

    def s3_settings_given(self) -> dict[str, Any]:
        return {"BucketName": BUCKET, "BucketFolder": FOLDER, "ServiceAccessRoleArn":
                "arn:aws:iam::123456789012:role/dms-s3-target", **self.scenario.s3_settings}

    def target(self) -> S3Target:
        return s3_target({"EndpointIdentifier": "s3", "S3Settings": self.s3_settings_given()})

    def layout(self, spec: TableSpec) -> CdcLayout:
        """Where this table's files are, as the bot works it out from the endpoint (and any override)."""
        return locate(spec, self.target()).layout

    def cdc_key(self, spec: TableSpec, moment: datetime) -> str:
        return layout_key(self.layout(spec), self.target(), moment)

    def _seed_s3(self) -> None:
        for bucket in dict.fromkeys(self.layout(spec).bucket for spec in self.catalog.tables):
            self.s3_client.create_bucket(Bucket=bucket)
        for spec in self.catalog.tables:
            layout = self.layout(spec)
            for n in range(1, self.world(spec).full_load_files + 1):
                self.s3_client.put_object(Bucket=layout.bucket, Key=self.full_load_key(spec, n), Body=b"full load")
            for minutes in self.world(spec).file_minutes_ago:
                self.s3_client.put_object(Bucket=layout.bucket, Key=self.cdc_key(spec, self.now - timedelta(minutes=minutes)),
                                          Body=b"I,1,2\n")

    # -- Snowflake ---------------------------------------------------------------------------------

    def _seed_snowflake(self) -> tuple[dict, dict, dict]:
        cur = self.fakesnow.connect(database="SYNC", schema="PUBLIC").cursor()
        cur.execute("CREATE SCHEMA IF NOT EXISTS STAGING")
        pipes: dict[str, dict] = {}
        history: dict[str, list[LoadRecord]] = {}
        definitions: dict[tuple[str, str], str] = {}
        for spec in self.catalog.tables:
            world = self.world(spec)
            cols = ", ".join(f"{name.upper()} {snowflake_type(_pg(name, dtype))}" for name, dtype in world.columns)
            cur.execute(f"CREATE TABLE {spec.final_table} ({cols})")
            cur.execute(f"CREATE TABLE {spec.staging_table} (OP VARCHAR(1), {cols})")
            newest = self.now - timedelta(minutes=world.newest_row_minutes_ago)
            final_rows = AURORA_ROWS if world.final_rows is None else world.final_rows
            cur.execute(f"INSERT INTO {spec.final_table} (ID, {spec.freshness_column}) SELECT SEQ4() + 1, %s "
                        f"FROM TABLE(GENERATOR(ROWCOUNT => {final_rows:d}))", (newest.replace(tzinfo=None),))
            ingested = [m for m, status, _ in world.loads if status == "Loaded"]
            pipes[spec.pipe] = {
                "executionState": world.pipe_state, "pendingFileCount": world.pending_files,
                "lastIngestedTimestamp": (self.now - timedelta(minutes=min(ingested))).isoformat() if ingested else None,
            }
            pipe = spec.pipe.upper().split(".")[-1]
            history[spec.staging_table] = [
                LoadRecord(self.cdc_key(spec, self.now - timedelta(minutes=m)), status, 0 if error else 120, error,
                           self.now - timedelta(minutes=m - 1), pipe)
                for m, status, error in world.loads]
            history[spec.staging_table] += [  # a retry is a new attempt, its own row (the COPY's: no pipe)
                LoadRecord(self.cdc_key(spec, self.now - timedelta(minutes=failed)), "Loaded", 120, "",
                           self.now - timedelta(minutes=again)) for failed, again in world.retried]
            history[spec.staging_table] += [
                LoadRecord(self.full_load_key(spec, n), "Load failed", 0, error, self.now - timedelta(minutes=m - 1), pipe)
                for n, (m, error) in enumerate(world.failed_full_loads, start=1)]
            history[spec.staging_table] += [
                LoadRecord(self.full_load_key(spec, n), "Loaded", 1, "",
                           self.now - timedelta(days=world.full_loads_loaded_days_ago), pipe)
                for n in range(1, world.full_loads_loaded + 1)]
            definitions[("PIPE", spec.pipe)] = (f"COPY INTO {spec.staging_table} FROM @SYNC.STAGING.CDC_STAGE/"
                                                f"{self.layout(spec).table_prefix} FILE_FORMAT = (TYPE = CSV)")
            names = [n.upper() for n, _ in world.columns]
            sets = ", ".join(f"t.{n} = s.{n}" for n in names)
            definitions[("TASK", spec.merge_task)] = (
                f"MERGE INTO {spec.final_table} t USING {spec.staging_table} s ON t.ID = s.ID "
                f"WHEN MATCHED THEN UPDATE SET {sets} WHEN NOT MATCHED THEN INSERT ({', '.join(names)}) "
                f"VALUES ({', '.join('s.' + n for n in names)})")
        cur.close()
        return pipes, history, definitions

    def _tasks(self) -> dict[str, dict]:
        tasks = {}
        for i, spec in enumerate(self.catalog.tables):
            world = self.world(spec)
            runs, elsewhere = ([TaskRun(state, self.now - timedelta(minutes=m),
                                        None if state == "EXECUTING" else self.now - timedelta(minutes=m) + timedelta(seconds=20),
                                        "100038" if error else "", error) for m, state, error in sorted(every)]
                               for every in (world.task_runs, world.other_database_runs))
            own_id = f"01b0{i:04d}"
            tasks[spec.merge_task] = {"state": world.task_state, "schedule": world.task_schedule, "runs": runs,
                                      "elsewhere": elsewhere, "id": own_id, "root": world.task_root,
                                      "suspended_reason": world.task_suspended_reason}
            if world.task_root:
                tasks[world.task_root] = {"state": world.task_root_state, "schedule": "1 MINUTE", "runs": [],
                                          "id": f"01a0{i:04d}"}
            tasks[spec.merge_task]["root_id"] = tasks[world.task_root]["id"] if world.task_root else own_id
        return tasks

    # -- Aurora ------------------------------------------------------------------------------------

    def _source_columns(self, spec: TableSpec) -> tuple[tuple[str, str], ...]:
        world = self.world(spec)
        widened = dict(world.widened_in_aurora)
        return tuple((name, widened.get(name, dtype)) for name, dtype in world.columns) + world.new_in_aurora

    def _aurora_rows(self, spec: TableSpec) -> int:
        """Aurora holds as many rows as the final table unless the scenario says otherwise."""
        rows = self.world(spec).aurora_rows
        return AURORA_ROWS if rows is None else rows

    def _seed_aurora(self, dsn: str | None) -> Any:
        s = self.scenario
        if dsn is None:
            slots = [] if s.never_ran else [Slot(s.slot_name or "dms_slot_aurora_snowflake_cdc", "test_decoding",
                                                 s.slot_active, s.slot_wal_status, s.slot_retained_bytes,
                                                 SOURCE_DATABASE)]
            slots += [Slot(name, "test_decoding", active, wal, retained, SOURCE_DATABASE)
                      for name, active, wal, retained in s.other_slots]
            return ScriptedAurora({spec.source: [_pg(n, t) for n, t in self._source_columns(spec)]
                                   for spec in self.catalog.tables}, sorted(slots, key=lambda slot: slot.name),
                                  {spec.source: self._aurora_rows(spec) for spec in self.catalog.tables}, self.calls)
        with psycopg.connect(dsn, autocommit=True) as conn:
            for spec in self.catalog.tables:
                cols = ", ".join(f"{name} {dtype}" for name, dtype in self._source_columns(spec))
                conn.execute(f"DROP TABLE IF EXISTS {spec.source}")
                conn.execute(f"CREATE TABLE {spec.source} ({cols})")
                conn.execute(f"INSERT INTO {spec.source} (id) SELECT generate_series(1, %s)", (self._aurora_rows(spec),))
        return AuroraGateway(dsn, connect=counting_connect(psycopg.connect, self.calls))


def _pg(name: str, dtype: str) -> PgColumn:
    """A PgColumn as information_schema would describe `dtype` (e.g. 'numeric(12,2)')."""
    match = re.match(r"^([a-z ]+?)(?:\((\d+)(?:,(\d+))?\))?$", dtype)
    base, first, second = match.group(1), match.group(2), match.group(3)
    if base in ("character varying", "character"):
        return PgColumn(name, base, char_length=int(first) if first else None)
    if base == "numeric":
        return PgColumn(name, base, precision=int(first) if first else None, scale=int(second or 0) if first else None)
    return PgColumn(name, base)


def _client(service: str, calls: Counter) -> Any:
    client = boto3.client(service, region_name=REGION, aws_access_key_id="sandbox", aws_secret_access_key="sandbox")
    count_aws(client, calls)
    return client
