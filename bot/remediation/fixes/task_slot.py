"""The DMS task's replication slot as the fixes that start a task see it (the diagnosis's own rule,
bot.diagnostics.slots): a start that resumes must not be tried from a slot whose WAL is lost."""
from __future__ import annotations

from ...diagnostics.slots import claim
from ...gateways import GatewayError, Gateways
from ...gateways.dms import TaskInfo


def lost_slot(gw: Gateways, task: TaskInfo) -> tuple[str, str]:
    """(the task's slot name when its wal_status is lost, else ""; what was read, for the facts)."""
    try:
        slots = gw.aurora.replication_slots()
    except GatewayError as exc:
        return "", f"the task's replication slot was not checked: {exc}"
    try:
        source: object = gw.dms.source(task.source_endpoint_arn)
    except GatewayError as exc:
        source = exc
    found = claim(slots, source, task)  # type: ignore[arg-type]
    if found.own is None:
        return "", f"the task's replication slot: {found.how}"
    if found.own.wal_status == "lost":
        return found.own.name, f"the task's replication slot {found.own.name} lost its WAL (wal_status lost)"
    return "", f"the task's replication slot {found.own.name} is {found.own.wal_status or 'present'}"
