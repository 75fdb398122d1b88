"""What a running fix holds: the worker's runtime (its services and timings) and its lease on one
request (the fencing token, renewed by a heartbeat). The job engine (jobs.py) and the steps
(steps.py) both use them."""
from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Callable, Protocol

from redis.exceptions import RedisError

from ..core import SyncBot
from ..models import Diagnosis
from .approvals import ApprovalRequest, Approvals, Fenced, Result

log = logging.getLogger(__name__)

FAILOVER_PAUSE_S = 0.25  # between fences tried again while Redis fails over


class Reporter(Protocol):
    """How the job tells people (implemented by the Slack glue)."""

    def request_changed(self, request: ApprovalRequest) -> None: ...

    def finished(self, request: ApprovalRequest) -> None: ...

    def diagnosis(self, request: ApprovalRequest, diag: Diagnosis) -> None: ...

    def state_lost(self, request: ApprovalRequest, what_ran: tuple[str, ...]) -> None: ...

    def follows(self, table: str) -> bool:
        """True when something shown (an incident's card) waits for a fresh diagnosis after a fix."""
        ...

    def verified(self, request: ApprovalRequest, diag: Diagnosis) -> None:
        """The fresh diagnosis after a successful fix, for what follows the table."""
        ...


class LeaseLost(Exception):
    """Another worker holds the request now (or it was cancelled): this one stops, touching nothing."""


class Stopping(Exception):
    """The worker is shutting down (SIGTERM): it makes no new change and hands the request over."""


class StateLost(Exception):
    """The request's record vanished from Redis mid-run (a restart without persistence, a flush)."""


@dataclass
class Runtime:
    bot: SyncBot
    approvals: Approvals
    reporter: Reporter
    worker_id: str = field(default_factory=lambda: f"worker-{os.getpid()}-{uuid.uuid4().hex[:6]}")
    poll_s: float = 30.0
    follow_timeout_s: float = 12 * 3600
    catchup_timeout_s: float = 1800
    stop_wait_s: float = 300
    # Short leases: a dead worker is taken over within one lease. The heartbeat renews it three times
    # per lease while a step runs.
    lease_s: float = 30.0
    heartbeat_every_s: float | None = None  # default: three times per lease
    # TRUNCATE runs with Snowflake's STATEMENT_TIMEOUT_IN_SECONDS below the lease: a worker killed
    # mid-statement cannot have its TRUNCATE land (Snowflake keeps detached statements running)
    # after another worker took over and started the reload.
    statement_timeout_s: int = 20
    lock_ttl_s: int = 6 * 3600
    # None: waits between polls end early when the worker is asked to stop (tests pass a fake sleep).
    sleep: Callable[[float], None] | None = None
    # Set by the worker's SIGTERM handler: no new change starts; a waiting step stops at once.
    stopping: threading.Event = field(default_factory=threading.Event)
    # Where a request handed over on shutdown is queued again (the worker's queues; None: recovery finds it).
    enqueue: Callable[[ApprovalRequest], None] | None = None
    # Redis behind Sentinel fails over in seconds: a fence that cannot reach Redis (or whose write no
    # replica confirmed) is tried again until this worker's lease would have lapsed, so the step goes
    # on against the new primary from the checkpoint that primary holds. False: give up at once (a single
    # Redis, where nothing fails over).
    failover_wait: bool = False

    def pause(self, seconds: float) -> None:
        """A wait between polls; raises Stopping if the worker is asked to stop meanwhile."""
        if self.sleep is not None:
            self.sleep(seconds)
        else:
            self.stopping.wait(seconds)
        if self.stopping.is_set():
            raise Stopping()

    @property
    def heartbeat_s(self) -> float:
        return self.heartbeat_every_s or self.lease_s / 3


class Lease:
    """This worker's hold on a request: the fencing token, renewed by a heartbeat thread."""

    def __init__(self, rt: Runtime, request: ApprovalRequest, token: str):
        self._rt, self.request, self.token = rt, request, token
        self.lost = ""
        self._held_until = time.monotonic() + rt.lease_s  # by this process's clock: the claim just passed
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{request.id}", daemon=True)

    def __enter__(self) -> "Lease":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def fence(self, detail: str = "", changes: bool = False, **fields: object) -> float:
        """Passes only while this worker still holds the request; returns Redis's time. Raises
        LeaseLost or StateLost otherwise. Call it right before every side effect."""
        if self.lost:
            raise LeaseLost(self.lost)
        if changes and self._rt.stopping.is_set():
            raise Stopping()  # shutting down: no new change, ever
        reply = self._fence_through_failover(detail, changes, fields)
        if reply.result is Result.MISSING:
            raise StateLost(self.request.id)
        if reply.result is not Result.OK:
            self.lost = reply.reason or "lease lost"
            raise LeaseLost(self.lost)
        return reply.now

    def _fence_through_failover(self, detail: str, changes: bool, fields: dict) -> Fenced:
        """The fence, tried again while Redis is unreachable or unconfirmed and the lease may still be
        this worker's. Safe to repeat: the script itself refuses a lapsed lease or another's token, by
        the server's clock, and the new primary holds only confirmed grants."""
        rt = self._rt
        while True:
            started = time.monotonic()
            try:
                reply = rt.approvals.fence(self.request.id, self.request.table, rt.worker_id, self.token,
                                           rt.lease_s, rt.lock_ttl_s, detail, changes, **fields)
            except RedisError as exc:
                if not rt.failover_wait or time.monotonic() + FAILOVER_PAUSE_S >= self._held_until \
                        or rt.stopping.is_set():
                    raise
                log.warning("request %s: Redis unavailable or unconfirmed (%s); trying the fence again",
                            self.request.id, type(exc).__name__)
                time.sleep(FAILOVER_PAUSE_S)
                continue
            if reply.result is Result.OK:
                self._held_until = started + rt.lease_s
            return reply

    def _beat(self) -> None:
        while not self._stop.wait(self._rt.heartbeat_s):
            try:
                self.fence()
            except (LeaseLost, StateLost) as exc:
                self.lost = self.lost or str(exc) or "state lost"
                return
            except RedisError as exc:
                # Keep trying until the lease would have lapsed; the step's own fence decides then.
                log.warning("heartbeat for request %s failed: %s", self.request.id, type(exc).__name__)
