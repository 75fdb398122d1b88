"""Which logical replication slot is the DMS task's, and what it says. Pure.

The slot that matters is the task's own. DMS reads one logical slot per task: the source endpoint's
PostgreSQLSettings.SlotName when set (botocore's model: "a previously created logical replication slot";
DMS "verifies that the specified logical replication slot exists before starting the CDC load task"),
otherwise one DMS creates when the task starts. The DMS user guide (CHAP_Source.PostgreSQL) does not
document the name DMS gives a slot it creates, so without SlotName the bot identifies it by what it can
check: a logical slot in the endpoint's database (pg_replication_slots.database = DatabaseName) with the
endpoint's plugin (PluginName test_decoding or pglogical, when set); of several, the one active while the
task runs. When that still leaves more than one, the check says it cannot tell, and asks for SlotName,
rather than take another task's (or a deleted task's) slot as evidence. Other slots never decide a
table's verdict; the maintenance report lists those nobody reads."""
from __future__ import annotations

from dataclasses import dataclass

from ..gateways.aurora import Slot
from ..gateways.dms import TaskInfo
from ..gateways.endpoints import PgSource
from ..humanize import byte_size
from ..models import CheckName, CheckResult, Status

SLOT_WARN_BYTES = 10 * 1024**3  # 10 GiB of WAL held back


@dataclass(frozen=True)
class SlotClaim:
    own: Slot | None  # the task's slot, when it can be told
    how: str  # how it was identified, or why it could not be
    others: tuple[Slot, ...] = ()
    task_running: bool = True
    missing: bool = False  # the endpoint names a SlotName that does not exist
    ambiguous: bool = False  # several slots could be the task's


def claim(slots: list[Slot], source: PgSource | Exception | None, task: TaskInfo | None) -> SlotClaim:
    running = task is None or task.status == "running"
    pg = source if isinstance(source, PgSource) else None
    if pg is not None and pg.slot_name:
        own = next((s for s in slots if s.name == pg.slot_name), None)
        others = tuple(s for s in slots if s is not own)
        if own is None:
            return SlotClaim(None, f"the source endpoint's SlotName {pg.slot_name!r} does not exist: DMS cannot "
                                   "start CDC from it", others, running, missing=True)
        return SlotClaim(own, f"the source endpoint {pg.endpoint}'s SlotName", others, running)
    candidates = [s for s in slots if (pg is None or not pg.database or s.database == pg.database)
                  and (pg is None or pg.plugin not in ("test_decoding", "pglogical") or s.plugin == pg.plugin)]
    if running and len(candidates) > 1:
        active = [s for s in candidates if s.active]
        candidates = active if len(active) == 1 else candidates
    unread = "" if pg is not None else f" (source endpoint not read: {source})" if source is not None else ""
    if len(candidates) == 1:
        own = candidates[0]
        why = (f"the only logical slot{' in database ' + pg.database if pg and pg.database else ''}"
               f"{' with plugin ' + pg.plugin if pg and pg.plugin in ('test_decoding', 'pglogical') else ''}"
               f"{', active while the task runs' if running and len(slots) > 1 else ''}{unread}")
        return SlotClaim(own, why, tuple(s for s in slots if s is not own), running)
    if not candidates:
        return SlotClaim(None, "no logical slot for this task" + unread, tuple(slots), running)
    return SlotClaim(None, f"{len(candidates)} logical slots could be this task's and the source endpoint names no "
                           f"SlotName: set PostgreSQLSettings.SlotName to tell{unread}", tuple(slots), running,
                     ambiguous=True)


def check_task_slot(found: SlotClaim, warn_bytes: int = SLOT_WARN_BYTES) -> CheckResult:
    others = [s.name for s in found.others]
    aside = (f"Other logical slots, not this task's (see the maintenance report): {', '.join(others)}",) if others else ()
    if found.own is None:
        if found.missing:
            return CheckResult(CheckName.SLOT, Status.FAILING, f"replication slot: {found.how}", aside,
                               facts={"slot_problem": True, "lost": False, "slot": ""})
        return CheckResult(CheckName.SLOT, Status.WARNING, f"task's replication slot not identified: {found.how}",
                           aside, facts={"slot_problem": False, "lost": False, "slot": ""})
    slot = found.own
    details = (describe(slot), f"Identified by {found.how}") + aside
    facts = {"slot": slot.name, "lost": slot.wal_status == "lost", "slot_problem": False,
             "wal_status_known": bool(slot.wal_status)}
    if slot.wal_status == "lost":
        facts["slot_problem"] = True
        return CheckResult(CheckName.SLOT, Status.FAILING,
                           f"slot {slot.name} lost WAL DMS had not read (wal_status lost, past max_slot_wal_keep_size): "
                           "the task cannot resume from it; resume-processing would fail again", details, facts)
    problems = []
    if not slot.active and found.task_running:
        problems.append(f"{slot.name} inactive while the task runs")
    if slot.wal_status == "unreserved":
        problems.append(f"{slot.name} holds more WAL than max_slot_wal_keep_size and will lose it at a checkpoint")
    elif (slot.retained_bytes or 0) >= warn_bytes:
        problems.append(f"{slot.name} holding too much WAL ({byte_size(slot.retained_bytes)})")
    if problems:
        facts["slot_problem"] = True
        return CheckResult(CheckName.SLOT, Status.WARNING, "; ".join(problems), details, facts)
    state = "active" if slot.active else "inactive while the task is stopped"
    return CheckResult(CheckName.SLOT, Status.OK, f"slot {slot.name} {state}, retains {byte_size(slot.retained_bytes)}",
                       details, facts)


def describe(slot: Slot) -> str:
    wal = (f"wal_status={slot.wal_status}" if slot.wal_status else
           "wal_status not reported (PostgreSQL before 13: retained WAL only)")
    safe = f", safe_wal_size {byte_size(slot.safe_wal_size)}" if slot.safe_wal_size is not None else ""
    where = f" in {slot.database}" if slot.database else ""
    return (f"{slot.name} ({slot.plugin}{where}): active={slot.active}, {wal}{safe}, "
            f"retained WAL {byte_size(slot.retained_bytes)}")
