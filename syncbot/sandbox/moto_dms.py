"""What moto's DMS lacks and syncbot relies on: DescribeTableStatistics, ReloadTables, the failure
fields of DescribeReplicationTasks, and task ARNs that end in a resource id as real AWS's do
(CloudWatch's ReplicationTaskIdentifier dimension is that id, not the task's name).

Where moto accepts what AWS documents it refuses, the sandbox refuses too:
- ReloadTables on a task of MigrationType cdc (DMS user guide, "Reloading tables during a task": only
  full-load and full-load-and-cdc tasks);
- StartReplicationTask with resume-processing or reload-target on a task that never ran (botocore's
  StartReplicationTaskType: start-replication "is the only valid action that can be used for the first
  time a task ... is run"); moto ignores the type, the sandbox records each one (task.start_types);
- replication instance identifiers are stored lower-case (botocore: ReplicationInstanceIdentifier "is
  stored as a lowercase string"); moto keeps the case given."""
from __future__ import annotations

import json
import random
import string
from datetime import datetime, timezone
from typing import Any

from moto.dms import exceptions, models, responses

_installed = False
RELOAD_POLLS = 2  # DescribeTableStatistics calls a reload takes to complete in the sandbox
# Called with (task, stat) when a sandbox reload completes, so the sandbox can play DMS + Snowpipe.
reload_hooks: list = []


def resource_id() -> str:
    return "".join(random.choices(string.ascii_uppercase + string.digits, k=38))


def install() -> None:
    """Idempotent; patches the classes moto dispatches to, so every mock_aws() sees it."""
    global _installed
    if _installed:
        return
    _installed = True
    task_cls = models.FakeReplicationTask
    original_init, original_to_dict, original_start = task_cls.__init__, task_cls.to_dict, task_cls.start

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs)
        self.arn = self.arn.rsplit(":", 1)[0] + ":" + resource_id()
        self.stop_reason = ""
        self.last_failure_message = ""
        self.tables_errored = 0
        self.table_statistics: list[dict[str, Any]] = []
        self.reloads: list[dict[str, Any]] = []
        self.start_types: list[str] = []

    def to_dict(self: Any) -> dict[str, Any]:
        data = original_to_dict(self)
        if self.stop_reason:
            data["StopReason"] = self.stop_reason
        if self.last_failure_message:
            data["LastFailureMessage"] = self.last_failure_message
        data["ReplicationTaskStats"]["TablesErrored"] = self.tables_errored
        # moto reports 100 ms; a sandbox task has been replicating for six hours.
        data["ReplicationTaskStats"]["ElapsedTimeMillis"] = 6 * 3600 * 1000
        return data

    def start(self: Any) -> Any:
        self.stop_reason = ""
        return original_start(self)

    task_cls.__init__, task_cls.to_dict, task_cls.start = init, to_dict, start
    responses.DatabaseMigrationServiceResponse.describe_table_statistics = _describe_table_statistics
    responses.DatabaseMigrationServiceResponse.reload_tables = _reload_tables
    original_start_task = responses.DatabaseMigrationServiceResponse.start_replication_task

    def start_replication_task(self: Any) -> Any:
        task = _task(self, self._get_param("ReplicationTaskArn"))
        kind = self._get_param("StartReplicationTaskType")
        if kind != "start-replication" and task.start_date is None:
            raise exceptions.InvalidResourceStateFault(
                f"Replication task has never been started: {kind} is not valid for its first run; use start-replication")
        task.start_types.append(kind)
        return original_start_task(self)

    responses.DatabaseMigrationServiceResponse.start_replication_task = start_replication_task
    instance_cls = models.FakeReplicationInstance
    original_instance_init = instance_cls.__init__

    def instance_init(self: Any, replication_instance_identifier: str, *args: Any, **kwargs: Any) -> None:
        original_instance_init(self, replication_instance_identifier.lower(), *args, **kwargs)

    instance_cls.__init__ = instance_init


def _task(response: Any, arn: str) -> Any:
    task = response.dms_backend.replication_tasks.get(arn)
    if task is None:
        raise exceptions.ResourceNotFoundFault("Replication task could not be found.")
    return task


def _describe_table_statistics(self: Any) -> str:
    task = _task(self, self._get_param("ReplicationTaskArn"))
    size = int(self._get_param("MaxRecords") or 100)
    start = int(self._get_param("Marker") or 0)
    for stat in task.table_statistics:
        _advance_reload(task, stat)
    page = [{k: v for k, v in stat.items() if not k.startswith("_")} for stat in task.table_statistics[start:start + size]]
    body: dict[str, Any] = {"ReplicationTaskArn": task.arn, "TableStatistics": page}
    if start + size < len(task.table_statistics):
        body["Marker"] = str(start + size)
    return json.dumps(body, default=str)


def _reload_tables(self: Any) -> str:
    task = _task(self, self._get_param("ReplicationTaskArn"))
    if task.status != "running":
        raise exceptions.InvalidResourceStateFault("Replication task is not running")
    if task.migration_type == "cdc":
        raise exceptions.InvalidResourceStateFault(
            "ReloadTables is supported only for tasks of migration type full-load or full-load-and-cdc")
    tables = self._get_param("TablesToReload")
    option = self._get_param("ReloadOption") or "data-reload"
    task.reloads.append({"tables": tables, "option": option})
    for wanted in tables:
        for stat in task.table_statistics:
            if (stat["SchemaName"], stat["TableName"]) == (wanted["SchemaName"], wanted["TableName"]):
                stat.update(TableState="Table is being reloaded", FullLoadRows=0, FullLoadReloaded=True,
                            FullLoadStartTime=datetime.now(timezone.utc).isoformat(),
                            _polls_left=RELOAD_POLLS, _target_rows=stat.get("FullLoadRows", 0) or 1000)
    return json.dumps({"ReplicationTaskArn": task.arn})


def _advance_reload(task: Any, stat: dict[str, Any]) -> None:
    if stat.get("TableState") != "Table is being reloaded":
        return
    stat["_polls_left"] -= 1
    stat["FullLoadRows"] = stat["_target_rows"] * (RELOAD_POLLS - stat["_polls_left"]) // RELOAD_POLLS
    if stat["_polls_left"] <= 0:
        stat["TableState"] = "Table completed"
        stat["FullLoadEndTime"] = datetime.now(timezone.utc).isoformat()
        for hook in reload_hooks:
            hook(task, stat)
