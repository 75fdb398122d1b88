"""Acknowledgements first. Slack wants every command and click acknowledged within 3 s, and a channel
in an incident sends them in bursts while earlier diagnoses are still running.

Bolt runs a listener, ack() included, on its listener executor (5 threads by default) and holds the
HTTP request until ack() has run. Our listeners keep their thread while the diagnosis they started
runs (up to SYNCBOT_CHECK_TIMEOUT), so with 5 threads the sixth /sync-status during a slow backend was
not even acknowledged (Bolt answers 404 after 3 s). A waiting listener costs a thread, not CPU (the
backends' load is bounded by the Diagnoser's lanes), so here there is always a free thread; and the
ack, not the work that follows it, gets the interpreter first."""
from __future__ import annotations

import contextvars
import queue
import threading
import time
from collections import deque
from concurrent.futures import Executor, Future
from typing import Any, Callable

from slack_bolt import Ack, BoltContext, BoltRequest, BoltResponse
from slack_bolt.middleware import Middleware

from bot import logs, metrics

LISTENER_THREADS = 64  # kept free for the next burst; more start as listeners take them
ACK_TIMEOUT_S = 3.0  # how long Bolt waits for a listener's ack() before answering 404


class AcksFirst(Middleware):
    """A global middleware: acknowledgements before everything else, for bursts of requests (Slack
    wants each within 3 s).

    - Bolt submits a listener, then polls for its ack every 10 ms: here submit() returns once the
      listener has acknowledged, so Bolt finds the ack at its first look.
    - What a listener does after ack() (start a diagnosis, record an approval, reply) competes for the
      interpreter with the requests of the same burst still waiting for theirs: so a listener that has
      acknowledged waits until no request awaits its ack and none arrived for `quiet_s` (at most
      `max_wait_s`). A burst is acknowledged first; its work starts right after.
    - At most `max_held` pieces of work wait so: past that, the oldest goes, one for each that comes.
      Under steady load there is no quiet moment, and work held until one would pile up and then run
      all at once, starving the acks it was held for (measured: ack p99 of 0.35-1.2 s at a steady
      300-400 requests/s, against 50-200 ms without holding). A burst of up to `max_held` is held whole.
    """

    def __init__(self, threads: int = LISTENER_THREADS, quiet_s: float = 0.05, max_wait_s: float = 0.5,
                 max_held: int = 64):
        self._quiet_s, self._max_wait_s, self._max_held = quiet_s, max_wait_s, max_held
        self.executor = _ListenerPool(self, threads)
        self._this_request = threading.local()
        self._lock = threading.Lock()
        self._awaiting: dict[int, float] = {}  # id(ack) -> when Bolt stops waiting for it
        self._last_arrival = 0.0
        self._held: deque[threading.Event] = deque()  # work waiting for the burst's acks, oldest first
        self._watching = False  # a burst is under way: from its first request to the next quiet moment

    def process(self, *, req: BoltRequest, resp: BoltResponse,
                next: Callable[[], BoltResponse]) -> BoltResponse:  # noqa: A002 - Bolt's name
        ack = self.arrived(req.context)  # on the request's own thread, after the signature check
        # The listener's log records carry the Slack request's own id (see _ListenerPool.submit).
        body = req.body or {}
        ack.slack_request = body.get("trigger_id") or body.get("event_id") or body.get("envelope_id")
        next()
        return resp

    def arrived(self, context: BoltContext) -> _Ack:
        ack = _Ack(self, threading.get_ident())
        context["ack"] = self._this_request.ack = ack
        with self._lock:
            self._last_arrival = time.monotonic()
            self._awaiting[id(ack)] = self._last_arrival + ACK_TIMEOUT_S
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="syncbot-acks-first", daemon=True).start()
        return ack

    def submitted(self) -> _Ack | None:
        """On the request's thread, as Bolt submits its listener: the ack to wait for, if any."""
        ack, self._this_request.ack = getattr(self._this_request, "ack", None), None
        return ack

    def acked(self, ack: _Ack, on_request_thread: bool) -> None:
        with self._lock:
            self._awaiting.pop(id(ack), None)
        ack.answered()
        metrics.ACK_SECONDS.observe(time.monotonic() - ack.arrived_at)
        # On the request's own thread (an event's automatic ack, process_before_response) waiting would
        # hold back the HTTP answer itself; on a listener's thread it holds back only the work after it.
        if not on_request_thread:
            self.after_burst()

    def after_burst(self) -> None:
        """Waits (at most `max_wait_s`) until no request awaits its ack and none arrived for `quiet_s`,
        or until `max_held` newer pieces of work wait behind this one."""
        with self._lock:
            if not self._watching:
                return
            gate = threading.Event()
            self._held.append(gate)
            while len(self._held) > self._max_held:
                self._held.popleft().set()
        if not gate.wait(self._max_wait_s):
            with self._lock:
                if gate in self._held:
                    self._held.remove(gate)

    def _watch(self) -> None:
        while True:
            time.sleep(self._quiet_s / 2)
            with self._lock:
                now = time.monotonic()
                # An ack never given (no listener matched) stops counting once Bolt has answered.
                self._awaiting = {key: gives_up for key, gives_up in self._awaiting.items() if gives_up > now}
                if not self._awaiting and now - self._last_arrival >= self._quiet_s:
                    self._watching = False
                    while self._held:
                        self._held.popleft().set()
                    return


class _Ack(Ack):
    def __init__(self, acks: AcksFirst, request_thread: int):
        super().__init__()
        self._acks, self._request_thread = acks, request_thread
        self.arrived_at = time.monotonic()
        self.slack_request: str | None = None  # the request's trigger or event id, for the logs
        # Held until the ack is given (or its listener ends); the request's thread waits on it. A plain
        # lock rather than an Event: cheaper, and a burst hands one over per request.
        self._given = threading.Lock()
        self._given.acquire()

    def answered(self) -> None:
        try:
            self._given.release()
        except RuntimeError:  # given already (ack() twice, or the listener ended after its ack)
            pass

    def wait(self, timeout: float) -> bool:
        return self._given.acquire(timeout=timeout)

    def __call__(self, *args: Any, **kwargs: Any):
        response = super().__call__(*args, **kwargs)
        self._acks.acked(self, on_request_thread=threading.get_ident() == self._request_thread)
        return response


def _correlated(ack: _Ack | None, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    with logs.correlated(slack_request=getattr(ack, "slack_request", None)):
        return fn(*args, **kwargs)


class _ListenerPool(Executor):
    """Bolt's listener executor, where every listener starts at once. A listener keeps its thread
    while its diagnosis runs (the backends' load is bounded by the Diagnoser's lanes; a waiting
    listener costs a thread, not CPU), so a pool with a cap would, at the cap, queue the next ack
    behind diagnoses. Instead `reserve` threads are kept free: a request takes one, and a spawner
    thread starts replacements in the background, so requests do not wait for threads to come up.
    Threads beyond the reserve end after `linger_s` without work."""

    def __init__(self, acks: AcksFirst, reserve: int, linger_s: float = 60.0):
        self._acks, self._reserve, self._linger_s = acks, reserve, linger_s
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._free = 0  # threads waiting for work that no submitted listener has been promised
        self._low = threading.Event()  # fewer than `reserve` free: the spawner tops them up
        self._spawner: threading.Thread | None = None
        self._running = 0  # listeners submitted and not yet ended: what a shutdown waits for
        self._ended = threading.Condition(self._lock)

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            if self._spawner is None:
                self._spawner = threading.Thread(target=self._top_up, name="syncbot-listener-spawner", daemon=True)
                self._spawner.start()
            now = self._free == 0  # none free yet: this one request waits for a thread to start
            self._free -= 0 if now else 1
            if self._free < self._reserve:
                self._low.set()
            self._running += 1
        if now:
            self._thread()
        future: Future = Future()
        ack = self._acks.submitted()
        # Bolt runs listeners after the middleware returned: the listener gets the request's id here,
        # in a copy of the submitter's context.
        self._work.put((future, contextvars.copy_context().run, (_correlated, ack, fn, *args), kwargs, ack))
        if ack is not None:
            ack.wait(ACK_TIMEOUT_S)
        return future

    def _top_up(self) -> None:
        while True:
            self._low.wait()
            self._acks.after_burst()  # starting threads takes the interpreter: not while acks wait
            self._low.clear()
            while True:
                with self._lock:
                    if self._free >= self._reserve:
                        break
                    self._free += 1
                self._thread()

    def _thread(self) -> None:
        threading.Thread(target=self._serve, name="syncbot-listener", daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                future, fn, args, kwargs, ack = self._work.get(timeout=self._linger_s)
            except queue.Empty:
                with self._lock:
                    if self._free > self._reserve:  # more free threads than the reserve: leave
                        self._free -= 1
                        return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(exc)
            if ack is not None:
                ack.answered()  # a listener that ended without ack(): Bolt answers for it
            with self._lock:
                self._free += 1
                self._running -= 1
                self._ended.notify_all()

    def idle(self, timeout: float) -> bool:
        """Waits until every listener submitted so far has ended (a diagnosis acknowledged is posted),
        at most `timeout` seconds; False if some still run then."""
        with self._lock:
            return self._ended.wait_for(lambda: self._running == 0, timeout)
