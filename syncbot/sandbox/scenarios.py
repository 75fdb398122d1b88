"""Named states of the whole pipeline, one per runbook verdict. The table under study is `orders`;
`customers` and `payments` stay healthy so the fleet view has something to sort."""
from __future__ import annotations

from dataclasses import dataclass, field, replace

ORDERS_COLUMNS = (
    ("id", "bigint"), ("customer_id", "bigint"), ("status", "character varying(32)"),
    ("total", "numeric(12,2)"), ("created_at", "timestamp with time zone"),
    ("updated_at", "timestamp with time zone"),
)
CUSTOMERS_COLUMNS = (("id", "bigint"), ("email", "text"), ("updated_at", "timestamp with time zone"))
PAYMENTS_COLUMNS = (("id", "bigint"), ("order_id", "bigint"), ("amount", "numeric(12,2)"),
                    ("updated_at", "timestamp with time zone"))

LENGTH_ERROR = "User character length limit (32) exceeded by string 'awaiting_payment_confirmation_from_the_card_issuer_after_3ds_challenge'"
STALE_MINUTES = 20 * 24 * 60  # a pipe left paused for 20 days: past the 14 days notifications are kept
FULL_LOAD_MISMATCH = ("Number of columns in file (6) does not match that of the corresponding table (7), "
                      "use file format option error_on_column_count_mismatch=false to ignore this error")
WAL_REMOVED = ("Last Error Replication task out of memory. Source endpoint: could not receive data from WAL stream: "
               "ERROR: requested WAL segment 000000010000002A00000031 has already been removed; "
               "Stop Reason FATAL_ERROR")
MISMATCH_ERROR = ("Number of columns in file (8) does not match that of the corresponding table (6), "
                  "use file format option error_on_column_count_mismatch=false to ignore this error")


# The DMS task log (CloudWatch Logs group dms-tasks-<instance>, stream dms-task-<resource id>), as
# (minutes ago of the first line, of the last, every N minutes, the line after its timestamp). The lines
# have the shape DMS writes: "<time> [<component padded to 16>]<severity>:  <message>  (<source>:<line>)",
# e.g. "2023-05-24T13:52:50 [SOURCE_CAPTURE  ]W:  Value of column ... (postgres_pglogical.c:2550)" in
# public DMS troubleshooting write-ups; the messages are the libpq and DMS errors of each story.
LogSeries = tuple[int, int, int, str]

QUIET_LOG: tuple[LogSeries, ...] = (
    (178, 178, 1, "[TASK_MANAGER    ]I:  Task 'AURORA-SNOWFLAKE-CDC' running CDC only in resume mode  "
                  "(replicationtask.c:1465)"),
    (170, 5, 15, "[PERFORMANCE     ]I:  Source latency 4.12 seconds, Target latency 5.03 seconds, "
                 "Handling latency 0.91 seconds  (replicationtask.c:3793)"),
)
SWAP_FULL = ("[SORTER          ]W:  Reading from source is paused. Total storage used by swap files exceeded the "
             "limit 1048576000 bytes  (sorter_transaction.c:110)")
STOPPED_MINUTES_AGO = 178

FAILED_LOG: tuple[LogSeries, ...] = (
    (215, 181, 4, SWAP_FULL),
    (200, 180, 2, "[SOURCE_CAPTURE  ]E:  RetCode: SQL_ERROR  SqlState: 08001 NativeError: 101 Message: "
                  "[unixODBC]could not receive data from server: Connection timed out [1022502]  "
                  "(ar_odbc_stmt.c:2816)"),
    (179, 179, 1, "[SOURCE_CAPTURE  ]E:  Cannot connect to the source endpoint using 'host=aurora-prod.cluster-"
                  "c1x2y3z4w5.us-east-1.rds.amazonaws.com port=5432 dbname=app user=dms_repl "
                  "password=Tr0ub4dor-3x sslmode=require' [1020101]  (postgres_endpoint_imp.c:1108)"),
    (178, 178, 1, "[TASK_MANAGER    ]E:  Task error notification received from subtask 0, thread 0 [1022502]  "
                  "(replicationtask.c:2880)"),
    (178, 178, 1, "[TASK_MANAGER    ]I:  Task 'AURORA-SNOWFLAKE-CDC' stopped  (replicationtask.c:3148)"),
)
STALLED_LOG: tuple[LogSeries, ...] = (
    (176, 1, 1, "[SOURCE_CAPTURE  ]E:  Error reading from the replication slot 'dms_slot_aurora_snowflake_cdc': "
                "could not receive data from WAL stream: SSL SYSCALL error: EOF detected [1020101]  "
                "(postgres_test_decoding.c:385)"),
    (175, 3, 4, SWAP_FULL),
    (170, 5, 15, "[PERFORMANCE     ]I:  Source latency 10742.38 seconds, Target latency 10811.20 seconds, "
                 "Handling latency 68.82 seconds  (replicationtask.c:3793)"),
)


@dataclass(frozen=True)
class TableWorld:
    columns: tuple[tuple[str, str], ...]
    # Columns Aurora has that Snowflake does not (added upstream, not yet downstream).
    new_in_aurora: tuple[tuple[str, str], ...] = ()
    table_state: str = "Table completed"
    file_minutes_ago: tuple[int, ...] = (58, 41, 27, 12, 3)
    pipe_state: str = "RUNNING"
    pending_files: int = 0
    # (minutes ago, status, first error) per load in COPY_HISTORY
    loads: tuple[tuple[int, str, str], ...] = ((41, "Loaded", ""), (27, "Loaded", ""), (12, "Loaded", ""))
    newest_row_minutes_ago: int = 4
    # Columns Aurora has widened since Snowflake's tables were made: (name, Aurora's type now).
    widened_in_aurora: tuple[tuple[str, str], ...] = ()
    # The merge task: SHOW TASKS state, its schedule, and TASK_HISTORY (minutes ago, STATE, error).
    task_state: str = "started"
    task_schedule: str = "1 MINUTE"
    task_runs: tuple[tuple[int, str, str], ...] = ((1, "SUCCEEDED", ""), (2, "SUCCEEDED", ""), (3, "SUCCEEDED", ""))
    # SHOW TASKS' last_suspended_reason; the root of the merge task's graph ("" : standalone) and its state.
    task_suspended_reason: str = ""
    task_root: str = ""
    task_root_state: str = "started"
    # Runs of a task of the same name in another database (a cloned DEV): (minutes ago, STATE, error).
    other_database_runs: tuple[tuple[int, str, str], ...] = ()
    # Rows Aurora holds; None: as many as the final table (the sync is complete).
    aurora_rows: int | None = None
    # Full-load files (LOAD0000000N.csv, N from 1) Snowpipe refused: (minutes ago, first error) each.
    failed_full_loads: tuple[tuple[int, str], ...] = ()
    # How many full-load files (LOAD00000001.csv…) a (re)load writes, and how many of those names (from
    # the first) the pipe loaded `full_loads_loaded_days_ago` days ago, within the 14 days it remembers.
    full_load_files: int = 1
    # Rows the final table holds; None: the sandbox's usual two.
    final_rows: int | None = None
    # Failed loads retried since: (minutes ago of the failed attempt in `loads`, minutes ago of the retry).
    retried: tuple[tuple[int, int], ...] = ()
    full_loads_loaded: int = 0
    full_loads_loaded_days_ago: int = 3


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    task_status: str = "running"
    stop_reason: str = ""
    failure: str = ""
    tables_errored: int = 0
    latency_seconds: tuple[float, ...] = (4, 5, 3, 6, 4, 5, 4, 3, 5, 4, 6, 4)
    slot_active: bool = True
    slot_wal_status: str = "reserved"
    slot_retained_bytes: int = 48 * 1024**2
    stopped_minutes_ago: int | None = None  # ReplicationTaskStats.StopDate of a task that is not running
    task_log: tuple[LogSeries, ...] = QUIET_LOG
    tables: dict[str, TableWorld] = field(default_factory=dict)
    # The task as DMS is configured: its MigrationType, its S3 target endpoint's S3Settings (on top of
    # the bucket and folder), its source endpoint's SlotName, and whether it ever ran.
    migration_type: str = "full-load-and-cdc"
    s3_settings: dict = field(default_factory=dict)
    slot_name: str = ""
    never_ran: bool = False  # and so DMS has made no slot for it yet
    # Logical slots beside the task's: (name, active, wal_status, retained bytes) each.
    other_slots: tuple[tuple[str, bool, str, int], ...] = ()


HEALTHY_TABLES = {
    "orders": TableWorld(ORDERS_COLUMNS),
    "customers": TableWorld(CUSTOMERS_COLUMNS, newest_row_minutes_ago=9),
    "payments": TableWorld(PAYMENTS_COLUMNS, newest_row_minutes_ago=2),
}


def _orders(**changes) -> dict[str, TableWorld]:
    return {**HEALTHY_TABLES, "orders": replace(HEALTHY_TABLES["orders"], **changes)}


_STALE = {"newest_row_minutes_ago": 185}

SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("healthy", "Everything flows: task running, files landing, pipe loading, data fresh.",
             tables=HEALTHY_TABLES),
    Scenario("dms-failed", "The DMS task failed on a source connectivity error; nothing leaves Aurora.",
             task_status="failed", stop_reason="FATAL_ERROR",
             failure="Last Error Replication task out of memory. Source endpoint connection lost: "
                     "could not receive data from server: Connection timed out; Stop Reason FATAL_ERROR",
             tables_errored=1, latency_seconds=(5, 6, 40, 400, 900, 1500, 2400),
             slot_active=False, slot_retained_bytes=7 * 1024**3,
             stopped_minutes_ago=STOPPED_MINUTES_AGO, task_log=FAILED_LOG,
             tables={k: replace(v, file_minutes_ago=(190, 176), newest_row_minutes_ago=180,
                                loads=((176, "Loaded", ""),)) for k, v in HEALTHY_TABLES.items()}),
    Scenario("stalled", "The DMS task says running, but no CDC file has reached S3 for three hours.",
             latency_seconds=(5, 60, 600, 1800, 3600, 5400, 7200, 9000, 10800),
             slot_retained_bytes=38 * 1024**3, task_log=STALLED_LOG,
             tables=_orders(file_minutes_ago=(200, 190, 181), loads=((181, "Loaded", ""),), **_STALE)),
    Scenario("schema-mismatch", "A column was added to public.orders; Snowpipe rejects every new file.",
             tables=_orders(new_in_aurora=(("discount_code", "character varying(64)"), ("loyalty_points", "integer")),
                            loads=((52, "Load failed", MISMATCH_ERROR), (33, "Load failed", MISMATCH_ERROR),
                                   (14, "Load failed", MISMATCH_ERROR)), **_STALE)),
    Scenario("pipe-paused", "Files land in S3 but the Snowpipe was left paused after maintenance.",
             tables=_orders(pipe_state="PAUSED", pending_files=37, loads=((170, "Loaded", ""),), **_STALE)),
    Scenario("merge-task-suspended", "Files land and load into staging, but the MERGE task was left suspended.",
             tables=_orders(task_state="suspended", task_runs=((190, "SUCCEEDED", ""), (191, "SUCCEEDED", "")),
                            **_STALE)),
    Scenario("rows-missing", "Everything flows, but the final table holds far fewer rows than Aurora.",
             tables=_orders(aurora_rows=3_000)),
    Scenario("column-widened", "public.orders.status was widened to varchar(255); Snowpipe rejects longer values.",
             tables=_orders(widened_in_aurora=(("status", "character varying(255)"), ("total", "numeric(14,2)")),
                            loads=((52, "Load failed", LENGTH_ERROR), (33, "Load failed", LENGTH_ERROR),
                                   (14, "Loaded", "")), **_STALE)),
    Scenario("stale-pipe", "The Snowpipe was left paused for 20 days: past the 14 days Snowflake keeps notifications.",
             tables=_orders(pipe_state="PAUSED", pending_files=0, loads=((STALE_MINUTES, "Loaded", ""),),
                            newest_row_minutes_ago=STALE_MINUTES)),
    Scenario("date-partitioned", "DMS writes CDC files into hourly date folders (YYYYMMDDHH, SLASH), parquet; "
             "they land, but the MERGE task was left suspended.",
             s3_settings={"DatePartitionEnabled": True, "DatePartitionSequence": "YYYYMMDDHH",
                          "DatePartitionDelimiter": "SLASH", "DataFormat": "parquet"},
             tables=_orders(task_state="suspended", task_runs=((190, "SUCCEEDED", ""), (191, "SUCCEEDED", "")),
                            **_STALE)),
    Scenario("full-load-after-reload", "After a reload, Snowpipe refuses the full-load files: IncludeOpForFullLoad "
             "is false, so they lack the Op column CDC files have. No column changed in Aurora.",
             tables=_orders(loads=((50, "Loaded", ""),), failed_full_loads=((30, FULL_LOAD_MISMATCH),
                                                                            (29, FULL_LOAD_MISMATCH)), **_STALE)),
    Scenario("leftover-slot", "A quiet, healthy table beside a deleted task's slot that still holds 30 GiB of WAL.",
             other_slots=(("ktwq2ezpxrgcewbi_00016390_5f3c1b8e_8e61_4cd2_9a0e_2b0f4c1d7a11", False, "extended",
                           30 * 1024**3),),
             tables=_orders(file_minutes_ago=(190, 150, 95), loads=((95, "Loaded", ""),), newest_row_minutes_ago=60)),
    Scenario("slot-lost", "The task's slot lost its WAL (past max_slot_wal_keep_size): the task failed and "
             "cannot resume.",
             task_status="failed", stop_reason="FATAL_ERROR", failure=WAL_REMOVED, tables_errored=0,
             slot_active=False, slot_wal_status="lost", slot_retained_bytes=0, slot_name="dms_orders_slot",
             stopped_minutes_ago=STOPPED_MINUTES_AGO, task_log=FAILED_LOG,
             tables={k: replace(v, file_minutes_ago=(190, 176), newest_row_minutes_ago=180,
                                loads=((176, "Loaded", ""),)) for k, v in HEALTHY_TABLES.items()}),
    Scenario("cdc-only-rows-missing", "A CDC-only task (MigrationType cdc): the final table misses rows, but "
             "ReloadTables cannot reload a CDC-only task.",
             migration_type="cdc", tables=_orders(aurora_rows=3_000)),
    Scenario("never-ran", "The DMS task was created and never started (status ready).",
             task_status="ready", never_ran=True,
             tables={k: replace(v, file_minutes_ago=(), newest_row_minutes_ago=185, loads=())
                     for k, v in HEALTHY_TABLES.items()}),
    Scenario("files-retried", "Two files failed to load an hour ago and were retried with success since: "
             "COPY_HISTORY keeps both attempts, the latest decides.",
             tables=_orders(loads=((70, "Load failed", "Timestamp '2026-13-01' is not recognized"),
                                   (65, "Load failed", "Numeric value 'abc' is not recognized"),
                                   (30, "Loaded", ""), (12, "Loaded", "")), retried=((70, 20), (65, 20)))),
    Scenario("task-failing-elsewhere", "A task named ORDERS_MERGE fails every minute in a cloned DEV database; "
             "this database's merge task runs fine.",
             tables=_orders(other_database_runs=tuple((m, "FAILED", "Object 'DEV.PUBLIC.ORDERS' does not exist")
                                                      for m in range(1, 61)))),
    Scenario("merge-task-in-graph", "The merge task is a child in a task graph; it was suspended by a user and its "
             "root task runs, so a plain ALTER TASK … RESUME is refused.",
             tables=_orders(task_state="suspended", task_schedule="", task_suspended_reason="USER_SUSPENDED",
                            task_root="STAGING.SYNC_ROOT", task_runs=((190, "SUCCEEDED", ""),), **_STALE)),
    Scenario("small-table-missing-rows", "A 1,000-row table holds 600 rows in Snowflake, with no lag: 40 % missing.",
             tables=_orders(aurora_rows=1_000, final_rows=600)),
    Scenario("resync-loaded-before", "The final table misses rows; its full-load files were loaded by the pipe "
             "3 days ago, so a re-sync's rewritten files have names Snowpipe skips.",
             tables=_orders(aurora_rows=3_000, full_load_files=3, full_loads_loaded=2)),
    Scenario("load-failed", "Snowpipe rejects some files for a file format error.",
             tables=_orders(loads=((40, "Load failed", "Timestamp '2026-13-01' is not recognized"),
                                   (20, "Partially loaded", "Numeric value 'abc' is not recognized"),
                                   (10, "Loaded", "")))),
)}
