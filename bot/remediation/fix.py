"""What a fix kind is: one `Fix` record per kind (bot/remediation/fixes/<kind>.py) holds its label,
who must agree, where it queues, its typed plan and its steps.

The plan is worked out from the systems as they are now (`prepare`), and the steps the worker runs
are made from that plan (`steps`). What approvers read is each step's `shown` line, taken from the
very steps the worker will run, so the text approved and the work done cannot drift apart. The
approval binds to the plan's hash: a changed plan (another task, other columns, other files) needs a
new approval. The approved plan is stored as JSON and the worker rebuilds the typed plan from it,
never from the catalog."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Callable, Generic, Self, TypeVar

from ..catalog import Access, TableSpec
from ..gateways import Gateways
from ..models import ActionKind
from .steps import Step

QUEUE_QUICK = "syncbot-fixes"  # seconds to minutes: restarts, pipe DDL, column fixes, file reloads


class PlanError(Exception):
    """The fix does not apply now (nothing to add, task not running...); the message says why."""


class PlanData:
    """Base of every fix's typed plan (a frozen dataclass): everything its steps need, and nothing
    read later from the catalog. Fields are str, int, bool or tuples of them, so that the JSON the
    approval stores turns back into the same plan (JSON lists come back as tuples)."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        """The approved plan, as the worker runs it. A record that does not fit this plan's fields
        (tampered, or stored by another version) raises rather than running half a plan."""
        names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        if not set(data) <= names:
            raise ValueError(f"the approved plan has fields this fix does not know: {sorted(set(data) - names)}")
        return cls(**{name: _tuples(value) for name, value in data.items()})


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


P = TypeVar("P", bound=PlanData)


@dataclass(frozen=True)
class Situation:
    """What a plan is worked out from: the table, the backends as they are now, the whole catalog
    (a DMS task may replicate several of its tables)."""

    spec: TableSpec
    gw: Gateways
    tables: tuple[TableSpec, ...]


@dataclass(frozen=True)
class Plan(Generic[P]):
    kind: ActionKind
    table: str
    data: P
    steps: tuple[str, ...]  # what approvers read, word for word: the `shown` line of each step that runs
    facts: tuple[str, ...] = ()  # what they need to judge it, as things were when it was requested

    @property
    def hash(self) -> str:
        body = json.dumps([self.kind.value, self.table, self.steps, self.data.to_json()], sort_keys=True,
                          default=str)
        return hashlib.sha256(body.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Fix(Generic[P]):
    kind: ActionKind
    label: str  # the button's and the messages' name for it
    plan_type: type[P]
    prepare: Callable[[Situation], tuple[P, tuple[str, ...]]]  # the plan and its facts, or PlanError
    steps: Callable[[P], tuple[Step, ...]]
    people: int = 1  # the requester counts as the first; the catalog's [access.policies] can only raise it
    destructive: bool = False  # deletes data: never fewer than two people, and a danger-styled button
    queue: str = QUEUE_QUICK
    everywhere: bool = False  # offered for every table whatever the verdict (the diagnosis's overflow menu)
    confirm: str = ""  # the confirmation dialog's sentence; {table} is the table's name
    diagnose_after: bool = False  # a fresh diagnosis follows its success in the thread

    def __post_init__(self) -> None:
        if self.destructive and self.people < 2:
            raise ValueError(f"{self.kind}: a fix that deletes data needs at least two people")

    def plan(self, spec: TableSpec, gw: Gateways, tables: list[TableSpec]) -> Plan[P]:
        data, facts = self.prepare(Situation(spec, gw, tuple(tables)))
        return Plan(self.kind, spec.name, data, self.shown(data), facts)

    def shown(self, data: P) -> tuple[str, ...]:
        return tuple(step.shown for step in self.steps(data) if step.shown)

    def approved_steps(self, plan_json: dict[str, Any]) -> tuple[Step, ...]:
        """The steps of the plan that was approved, rebuilt from its stored JSON."""
        return self.steps(self.plan_type.from_json(plan_json))

    def people_required(self, access: Access) -> int:
        return max(self.people, access.policies.get(self.kind.value, 0))

    def confirm_text(self, table: str) -> str:
        return (self.confirm or f"{self.label} for {{table}}. This changes production.").format(table=table)
