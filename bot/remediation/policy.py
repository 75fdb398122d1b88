"""How many people each fix needs. The code's table is the floor; the catalog's [access.policies]
can only raise it."""
from __future__ import annotations

from dataclasses import dataclass

from ..catalog import Access
from ..models import ActionKind


@dataclass(frozen=True)
class Policy:
    people: int  # the requester counts as the first
    destructive: bool  # deletes data: never fewer than two people, and a danger-styled button


POLICIES: dict[ActionKind, Policy] = {
    ActionKind.RESTART_TASK: Policy(1, False),
    ActionKind.PAUSE_PIPE: Policy(1, False),
    ActionKind.RESUME_PIPE: Policy(1, False),
    ActionKind.FIX_COLUMNS: Policy(1, False),
    ActionKind.RETRY_FILES: Policy(1, False),
    ActionKind.RESYNC: Policy(2, True),  # never fewer than two people, whatever the catalog says
    ActionKind.RESUME_TASK: Policy(1, False),
}


def people_required(kind: ActionKind, access: Access) -> int:
    return max(POLICIES[kind].people, access.policies.get(kind.value, 0))
