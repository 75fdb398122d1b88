"""What every fix's steps share: the step, the context it runs in, and how it fails.

A step makes at most one change, so a checkpoint after it means "this change happened". A step
that is resumed (a worker died inside it) first asks the system whether its change already
happened. Each fix kind's own steps live in its module under fixes/; they read only the approved
plan, never the catalog."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from ..gateways import Gateways

if TYPE_CHECKING:
    from .runtime import Lease, Runtime


class StepFailed(Exception):
    """The step could not do its work; the message says why, in words for people."""


@dataclass
class StepContext:
    gw: Gateways
    lease: "Lease"
    resumed: bool  # a worker died inside this step: its change may have happened
    started_at: float  # the Redis server's time when this step passed its fence
    rt: "Runtime"

    def live(self, text: str) -> None:
        """A progress line drawn into the request's message; also renews the lease."""
        self.lease.fence(live=text)
        self.rt.reporter.request_changed(self.rt.approvals.get(self.lease.request.id))

    def wait(self, seconds: float) -> None:
        """Between polls; ends early, raising Stopping, when the worker shuts down."""
        self.rt.pause(seconds)


@dataclass(frozen=True)
class Step:
    name: str  # the audit trail's and the progress line's name for it
    run: Callable[[StepContext], str]
    changes: bool = True  # a side effect: fenced right before it, never repeated once checkpointed
    # What approvers read for this step (the statement or call, word for word); None: an internal
    # check that changes nothing and needs no approval.
    shown: str | None = None
