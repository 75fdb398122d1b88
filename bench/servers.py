"""The benchmark's protocol servers, each in a process of its own so that their work never holds the
measured process's interpreter, each behind its delaying proxy (bench/delay.py):

    python -m bench.servers aws|snowflake|aurora --tables N --latency-ms L --now ISO [--pg-port P]

- aws: moto's server (HTTP/1.1, the sandbox's DMS additions), seeded with the fleet's DMS tasks, their
  latency metrics and every table's S3 files;
- snowflake: fakesnow's server behind bench/snowpipe.py, seeded with every final and staging table;
- aurora: only the proxy, in front of the machine's PostgreSQL (the parent seeds the database).

Prints one JSON line, {"port": the proxy's port}, then answers one JSON line per command read on
stdin: {"do": "counts"}; for snowflake {"do": "forget", "pipe": P, "history": T} and {"do": "restore"}.
Ends when stdin closes."""
from __future__ import annotations

import argparse
import functools
import json
import sys
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, Callable

import boto3

from bot.catalog import Catalog
from bot.diagnostics.typemap import snowflake_type
from syncbot.sandbox import moto_dms, snowflake_server
from syncbot.sandbox.pipeline import _pg, cdc_key
from syncbot.sandbox.scenarios import ORDERS_COLUMNS

from .delay import DelayProxy
from .protocols import REGION, fleet_catalog
from .snowpipe import HISTORY_TABLE, RUNS_TABLE, TASKS_TABLE, SnowpipeTelemetry, create_tables


def paused(i: int) -> bool:
    """Every tenth pipe is paused (files pile up, the final table goes stale): "Resume pipe"."""
    return i % 10 == 3


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.servers")
    parser.add_argument("kind", choices=("aws", "snowflake", "aurora"))
    parser.add_argument("--tables", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, required=True)
    parser.add_argument("--now", required=True)
    parser.add_argument("--pg-port", type=int, default=5432)
    args = parser.parse_args()
    catalog = fleet_catalog(args.tables)
    now = datetime.fromisoformat(args.now)
    commands: dict[str, Callable[[dict], Any]] = {}
    if args.kind == "aws":
        target = start_moto()
        seed_aws(catalog, now, target)
    elif args.kind == "snowflake":
        layer = SnowpipeTelemetry(lambda *a: None, {}, set())
        target = start_fakesnow(layer)
        seed_snowflake(catalog, now, layer)
        commands.update(snowflake_commands(layer))
    else:
        target = args.pg_port
    proxy = DelayProxy(target, args.latency_ms / 1000)
    commands["counts"] = lambda _: {"TCP connections": proxy.connections,
                                    **(dict(layer.counts) if args.kind == "snowflake" else {})}
    print(json.dumps({"port": proxy.port}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        print(json.dumps(commands[command["do"]](command)), flush=True)


# -- AWS ---------------------------------------------------------------------------------------------

def start_moto() -> int:
    """moto's server application (what `moto_server` and ThreadedMotoServer serve), under waitress
    instead of werkzeug's development server: that one answers every request with "Connection: close",
    which AWS's endpoints never do (botocore keeps its connections alive), so every call would pay a
    new connection's round trip."""
    import waitress
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    class Routed(DomainDispatcherApplication):
        """moto finds each request's service under one lock, listing its own package's directory and
        trying every service's URL patterns, twice a request: with 32 threads the requests queue on
        that lock. Which service a host name means never changes, so the answer is kept (AWS routes
        by host name before a request reaches the service)."""

        @functools.lru_cache(maxsize=None)
        def get_backend_for_host(self, host: str | None) -> Any:
            return super().get_backend_for_host(host)

    moto_dms.install()
    draw_widgets()
    memoize_timestamps()
    server = waitress.create_server(Routed(create_backend_app), host="127.0.0.1", port=0,
                                    threads=32, connection_limit=1000)
    threading.Thread(target=server.run, name="moto-server", daemon=True).start()
    return server.effective_port


def draw_widgets() -> None:
    """moto lacks GetMetricWidgetImage, which `/sync-status <table>` calls for the latency picture:
    answer it with a fixed PNG, as the stand-in benchmark does (bench/fleet.py)."""
    from moto.cloudwatch.responses import CloudWatchResponse
    from moto.core.responses import ActionResult

    def get_metric_widget_image(self: CloudWatchResponse) -> ActionResult:
        return ActionResult({"MetricWidgetImage": b"\x89PNG\r\n\x1a\n" + bytes(64)})

    CloudWatchResponse.get_metric_widget_image = get_metric_widget_image


def memoize_timestamps() -> None:
    """moto writes each S3 object's LastModified by parsing the time it stored as text with dateutil
    (about a fifth of its CPU in a 500-table round, where S3 answers from its own machines). The
    same stored values come back every round: each is parsed once."""
    import moto.core.serialize

    parse = moto.core.serialize.parse_to_aware_datetime
    cached = functools.lru_cache(maxsize=65536)(parse)

    def parse_to_aware_datetime(value: Any) -> Any:
        return cached(value) if isinstance(value, (str, int, float)) else parse(value)

    moto.core.serialize.parse_to_aware_datetime = parse_to_aware_datetime


def seed_aws(catalog: Catalog, now: datetime, port: int) -> None:
    from moto.dms.models import dms_backends

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=f"http://127.0.0.1:{port}", region_name=REGION,
                            aws_access_key_id="bench", aws_secret_access_key="bench")

    dms, cloudwatch, s3 = client("dms"), client("cloudwatch"), client("s3")
    instances = {name: dms.create_replication_instance(ReplicationInstanceIdentifier=name,
                                                       ReplicationInstanceClass="dms.t3.medium")
                 ["ReplicationInstance"]["ReplicationInstanceArn"]
                 for name in {spec.dms_instance for spec in catalog.tables}}
    # The endpoints as DMS has them (the catalog's s3_bucket / s3_prefix override the target's, as a
    # fleet with a bucket per task does); the round reads each once and keeps it.
    source = dms.create_endpoint(EndpointIdentifier="aurora", EndpointType="source", EngineName="aurora-postgresql",
                                 DatabaseName="app", PostgreSQLSettings={"DatabaseName": "app"})["Endpoint"]["EndpointArn"]
    target = dms.create_endpoint(EndpointIdentifier="s3", EndpointType="target", EngineName="s3", S3Settings={
        "BucketName": sorted({spec.s3_bucket for spec in catalog.tables})[0], "BucketFolder": "dms",
        "ServiceAccessRoleArn": "arn:aws:iam::123456789012:role/dms-s3-target"})["Endpoint"]["EndpointArn"]
    for task, specs in catalog.tasks().items():
        arn = dms.create_replication_task(
            ReplicationTaskIdentifier=task, SourceEndpointArn=source, TargetEndpointArn=target,
            MigrationType="full-load-and-cdc", ReplicationInstanceArn=instances[specs[0].dms_instance],
            TableMappings=json.dumps({"rules": []}))["ReplicationTask"]["ReplicationTaskArn"]
        dms.start_replication_task(ReplicationTaskArn=arn, StartReplicationTaskType="start-replication")
        dms_backends["123456789012"][REGION].replication_tasks[arn].table_statistics = [
            {"SchemaName": s.source_schema, "TableName": s.source_table, "TableState": "Table completed",
             "Inserts": 1200, "Updates": 340, "Deletes": 12, "FullLoadRows": 50_000, "FullLoadErrorRows": 0,
             "LastUpdateTime": (now - timedelta(minutes=3)).isoformat()} for s in specs]
        for metric in ("CDCLatencySource", "CDCLatencyTarget"):
            cloudwatch.put_metric_data(Namespace="AWS/DMS", MetricData=[{
                "MetricName": metric, "Value": 4.0 + i % 3, "Unit": "Seconds",
                "Timestamp": now - timedelta(minutes=5 * (12 - i) - 2),
                "Dimensions": [{"Name": "ReplicationInstanceIdentifier", "Value": specs[0].dms_instance},
                               {"Name": "ReplicationTaskIdentifier", "Value": arn.rsplit(":", 1)[-1]}]}
                for i in range(12)])
    for bucket in {spec.s3_bucket for spec in catalog.tables}:
        s3.create_bucket(Bucket=bucket)
    puts = [(spec.s3_bucket, key) for spec in catalog.tables for key in (
        f"{spec.s3_table_prefix}LOAD00000001.csv", *(cdc_key(spec, now - timedelta(minutes=m)) for m in (41, 27, 12, 3)))]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda where: s3.put_object(Bucket=where[0], Key=where[1], Body=b"I,1\n"), puts))


# -- Snowflake ---------------------------------------------------------------------------------------

def start_fakesnow(layer: SnowpipeTelemetry) -> int:
    def wrap(app: Any) -> Any:
        layer._app = app
        return layer

    context = snowflake_server.serving(wrap)
    _RUNNING.append(context)  # entered for the life of this process; a dropped one would stop the server
    args = context.__enter__()
    memoize_translation()
    memoize_description()
    memoize_qualification_check()
    return args["port"]


_RUNNING: list[Any] = []
_CURRENT = threading.local()  # the statement text fakesnow is working on, in this thread


def memoize_translation() -> None:
    """fakesnow turns each statement into DuckDB's SQL with sqlglot (parse, some 70 tree rewrites, SQL
    generation): about a second of CPU for one 50-table COPY_HISTORY statement on the development
    machine, where Snowflake compiles it in milliseconds. The same statements come back every round,
    so the translation is kept by statement text and session (database, schema); the measured rounds
    come after an uncounted one that fills it. What a statement then costs is fakesnow running it in
    DuckDB and answering in the connector's format, over HTTP. Kept objects are only read again."""
    import fakesnow.cursor
    import fakesnow.server
    from fakesnow.cursor import FakeSnowflakeCursor

    parsed: dict[str, Any] = {}
    translated: dict[tuple, Any] = {}
    original_parse, original_transform = fakesnow.cursor.parse_one, FakeSnowflakeCursor._transform

    def parse_one(sql: str, *args: Any, **kwargs: Any) -> Any:
        _CURRENT.sql = sql
        if sql not in parsed:
            parsed[sql] = original_parse(sql, *args, **kwargs)
            return parsed[sql].copy()  # the first translation rewrites the tree it is given
        return parsed[sql]

    def transform(self: FakeSnowflakeCursor, expression: Any, params: Any) -> Any:
        key = (getattr(_CURRENT, "sql", None), self._conn.database, self._conn.schema)
        if params or key[0] is None:
            return original_transform(self, expression, params)
        if key not in translated:
            done = original_transform(self, expression, params)
            generate, texts = done.sql, {}

            def sql(dialect: Any = None, **options: Any) -> str:
                asked = (dialect, tuple(sorted(options.items())))
                if asked not in texts:
                    texts[asked] = generate(dialect=dialect, **options)
                return texts[asked]

            done.sql = sql
            translated[key] = done
        return translated[key]

    fakesnow.cursor.parse_one = parse_one
    fakesnow.server.parse_one = parse_one
    FakeSnowflakeCursor._transform = transform


def memoize_description() -> None:
    """Snowflake sends a result's column types with the result. fakesnow finds them by parsing
    "DESCRIBE <the DuckDB SQL it just ran>" with sqlglot, generating it back and running it again,
    on the server's event loop: over half of its CPU in a 500-table round, and every other request
    waits behind it. The seeded tables never change shape, so a statement's description is kept by
    its DuckDB text and session; statements with server-side bindings are described afresh."""
    from fakesnow.cursor import FakeSnowflakeCursor

    described: dict[tuple, list] = {}
    original = FakeSnowflakeCursor._describe_last_sql

    def describe_last_sql(self: FakeSnowflakeCursor) -> list:
        if self._last_params:
            return original(self)
        key = (self._last_sql, self._conn.database, self._conn.schema)
        if key not in described:
            described[key] = original(self)
        return list(described[key])

    FakeSnowflakeCursor._describe_last_sql = describe_last_sql


def memoize_qualification_check() -> None:
    """Before running a statement fakesnow walks its whole syntax tree for tables named without a
    database or schema (to refuse them in a session that has none): half of its Python time in a
    500-table round. The answer depends on the statement's text and the session's flags only."""
    from fakesnow.cursor import FakeSnowflakeCursor

    checked: set[tuple] = set()
    original = FakeSnowflakeCursor.check_db_and_schema

    def check_db_and_schema(self: FakeSnowflakeCursor, expression: Any) -> None:
        key = (getattr(_CURRENT, "sql", None), self._conn.database_set, self._conn.schema_set)
        if key[0] is None or key not in checked:
            original(self, expression)  # raises for an unqualified name: never kept
            if key[0] is not None:
                checked.add(key)

    FakeSnowflakeCursor.check_db_and_schema = check_db_and_schema


def seed_snowflake(catalog: Catalog, now: datetime, layer: SnowpipeTelemetry) -> None:
    import fakesnow.server

    warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
    cur = fakesnow.server.shared_fs.connect("SYNC", "PUBLIC").cursor()
    cur.execute("CREATE SCHEMA IF NOT EXISTS STAGING")
    create_tables(cur)
    tasks = [(spec.merge_task.split(".")[-1], spec.merge_task.split(".")[-2], "started", "5 MINUTE", None,
              f"01{i:04d}", "SYNC", None) for i, spec in enumerate(catalog.tables)]
    cur.executemany(f"INSERT INTO {TASKS_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", tasks)
    cur.executemany(f"INSERT INTO {RUNS_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", [
        (name, schema, "SUCCEEDED", (now - timedelta(minutes=m)).replace(tzinfo=None),
         (now - timedelta(minutes=m - 1)).replace(tzinfo=None), None, None, "SYNC", task_id)
        for name, schema, _, _, _, task_id, *_ in tasks for m in (3, 8, 13)])
    cols = ", ".join(f"{name.upper()} {snowflake_type(_pg(name, dtype))}" for name, dtype in ORDERS_COLUMNS)
    history = []
    for i, spec in enumerate(catalog.tables):
        cur.execute(f"CREATE TABLE {spec.final_table} ({cols})")
        cur.execute(f"CREATE TABLE {spec.staging_table} (OP VARCHAR(1), {cols})")
        newest = now - timedelta(minutes=185 if paused(i) else 4)
        cur.execute(f"INSERT INTO {spec.final_table} (ID, {spec.freshness_column}) VALUES (1, %s)",
                    (newest.replace(tzinfo=None),))
        layer.pipes[spec.pipe] = json.dumps({
            "executionState": "PAUSED" if paused(i) else "RUNNING", "pendingFileCount": 37 if paused(i) else 0,
            "lastIngestedTimestamp": (now - timedelta(minutes=170 if paused(i) else 12)).isoformat()})
        layer.history_tables.add(spec.staging_table)
        history += [(spec.staging_table, cdc_key(spec, now - timedelta(minutes=m)), "Loaded", 120, None,
                     (now - timedelta(minutes=m - 1)).replace(tzinfo=None), spec.pipe.split(".")[0],
                     spec.pipe.split(".")[-1]) for m in ((170,) if paused(i) else (41, 27, 12))]
    cur.executemany(f"INSERT INTO {HISTORY_TABLE} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", history)
    cur.close()


def snowflake_commands(layer: SnowpipeTelemetry) -> dict[str, Callable[[dict], Any]]:
    """Take a pipe and a staging table's load history away (Snowflake then refuses the statements that
    name them), and give them back."""
    taken: dict[str, Any] = {}

    def forget(command: dict) -> None:
        taken["pipe"] = (command["pipe"], layer.pipes.pop(command["pipe"]))
        taken["history"] = command["history"]
        layer.history_tables.discard(command["history"])

    def restore(_: dict) -> None:
        pipe, status = taken.pop("pipe")
        layer.pipes[pipe] = status
        layer.history_tables.add(taken.pop("history"))

    return {"forget": forget, "restore": restore}


if __name__ == "__main__":
    main()
