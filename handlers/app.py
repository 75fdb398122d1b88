"""Builds the Bolt app: one register(app, bot) per listener kind, one error handler for all."""
from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Executor, Future
from typing import Any, Callable

from slack_bolt import Ack, App, BoltContext
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler

from bot.core import SyncBot
from bot.remediation.service import Remediation

from . import actions, commands, events
from .reporting import SlackReporter

log = logging.getLogger(__name__)

# Bolt runs a listener, ack() included, on its listener executor (5 threads by default) and holds the
# HTTP request until ack() has run. Our listeners keep their thread while the diagnosis they started
# runs (up to SYNCBOT_CHECK_TIMEOUT), so with 5 threads the sixth /sync-status during a slow backend
# was not even acknowledged. A waiting listener costs a thread, not CPU (the backend work is bounded by
# the Diagnoser's lanes), so there are enough threads that an ack never queues behind diagnoses.
LISTENER_THREADS = 64  # started with the first request; more start when all are busy
ACK_TIMEOUT_S = 3.0  # how long Bolt waits for a listener's ack() before answering 404


class AcksFirst:
    """Acknowledgements before everything else, for bursts of requests (Slack wants each within 3 s).

    - Bolt submits a listener, then polls for its ack every 10 ms: here submit() returns once the
      listener has acknowledged, so Bolt finds the ack at its first look.
    - What a listener does after ack() (start a diagnosis, record an approval, reply) competes for the
      interpreter with the requests of the same burst still waiting for theirs: so a listener that has
      acknowledged waits until no request awaits its ack and none arrived for `quiet_s` (at most
      `max_wait_s`). A burst is acknowledged first; its work starts right after.
    """

    def __init__(self, threads: int = LISTENER_THREADS, quiet_s: float = 0.02, max_wait_s: float = 0.5):
        self._quiet_s, self._max_wait_s = quiet_s, max_wait_s
        self.executor = _ListenerPool(self, threads)
        self._this_request = threading.local()
        self._lock = threading.Lock()
        self._awaiting: dict[int, float] = {}  # id(ack) -> when Bolt stops waiting for it
        self._last_arrival = 0.0
        self._quiet = threading.Event()
        self._quiet.set()
        self._watching = False

    def middleware(self, context: BoltContext, next: Callable[[], None]) -> None:  # noqa: A002 - Bolt's name
        """A global middleware: runs on the request's own thread, after the signature check."""
        ack = _Ack(self, threading.get_ident())
        context["ack"] = self._this_request.ack = ack
        with self._lock:
            self._last_arrival = time.monotonic()
            self._awaiting[id(ack)] = self._last_arrival + ACK_TIMEOUT_S
            self._quiet.clear()
            if not self._watching:
                self._watching = True
                threading.Thread(target=self._watch, name="syncbot-acks-first", daemon=True).start()
        next()

    def submitted(self, listener: Future) -> None:
        """On the request's thread, right after Bolt submitted its listener: wait for the ack."""
        ack, self._this_request.ack = getattr(self._this_request, "ack", None), None
        if ack is not None:
            listener.add_done_callback(lambda _: ack.called.set())
            ack.called.wait(ACK_TIMEOUT_S)

    def acked(self, ack: _Ack, on_request_thread: bool) -> None:
        with self._lock:
            self._awaiting.pop(id(ack), None)
        ack.called.set()
        if not on_request_thread:  # an event's automatic ack, or process_before_response: never wait
            self._quiet.wait(self._max_wait_s)

    def _watch(self) -> None:
        while True:
            time.sleep(self._quiet_s / 2)
            with self._lock:
                now = time.monotonic()
                # An ack never given (no listener matched) stops counting once Bolt has answered.
                self._awaiting = {key: gives_up for key, gives_up in self._awaiting.items() if gives_up > now}
                if not self._awaiting and now - self._last_arrival >= self._quiet_s:
                    self._watching = False
                    self._quiet.set()
                    return


class _Ack(Ack):
    def __init__(self, acks: AcksFirst, request_thread: int):
        super().__init__()
        self._acks, self._request_thread = acks, request_thread
        self.called = threading.Event()

    def __call__(self, *args: Any, **kwargs: Any):
        response = super().__call__(*args, **kwargs)
        self._acks.acked(self, on_request_thread=threading.get_ident() == self._request_thread)
        return response


class _ListenerPool(Executor):
    """Bolt's listener executor, where every listener starts at once. A listener keeps its thread
    while its diagnosis runs (the backends' load is bounded by the Diagnoser's lanes; a waiting
    listener costs a thread, not CPU), so a pool with a cap would, at the cap, queue the next ack
    behind diagnoses. `warm` threads start with the first request and stay, so a burst does not wait
    for threads to come up; beyond them a thread starts when none is free and ends after `linger_s`
    without work."""

    def __init__(self, acks: AcksFirst, warm: int, linger_s: float = 60.0):
        self._acks, self._warm, self._linger_s = acks, warm, linger_s
        self._work: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._free = 0  # threads waiting for work that no submitted listener has been promised
        self._started = False

    def submit(self, fn, /, *args, **kwargs) -> Future:
        with self._lock:
            start = 0 if self._started else self._warm
            self._started, self._free = True, self._free + start
            extra = self._free == 0
            self._free -= 0 if extra else 1
        for _ in range(start):
            self._thread(stays=True)
        if extra:
            self._thread(stays=False)
        future: Future = Future()
        self._work.put((future, fn, args, kwargs))
        self._acks.submitted(future)
        return future

    def _thread(self, stays: bool) -> None:
        threading.Thread(target=self._serve, args=(stays,), name="syncbot-listener", daemon=True).start()

    def _serve(self, stays: bool) -> None:
        while True:
            try:
                future, fn, args, kwargs = self._work.get(timeout=None if stays else self._linger_s)
            except queue.Empty:
                with self._lock:
                    if self._free:  # more threads wait than listeners were promised one: leave
                        self._free -= 1
                        return
                continue
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(fn(*args, **kwargs))
                except BaseException as exc:  # noqa: BLE001 - handed to whoever waits on the future
                    future.set_exception(exc)
            with self._lock:
                self._free += 1


def web_client(token: str | None, base_url: str) -> WebClient:
    """slack_sdk's own retry handlers: connection resets and 429s with Retry-After."""
    return WebClient(token=token, base_url=base_url, retry_handlers=[
        ConnectionErrorRetryHandler(max_retry_count=2), RateLimitErrorRetryHandler(max_retry_count=2)])


def build_app(bot: SyncBot, remediation: Remediation, reporter: SlackReporter, *, signing_secret: str,
              client: WebClient, process_before_response: bool = False) -> App:
    acks = AcksFirst()
    # The client carries the token (and the API base URL); giving Bolt both would make it warn.
    app = App(signing_secret=signing_secret, client=client, process_before_response=process_before_response,
              listener_executor=acks.executor)
    app.use(acks.middleware)
    commands.register(app, bot)
    actions.register(app, remediation, reporter)
    events.register(app, bot)

    @app.error
    def on_error(error, body, respond):
        # Unexpected failures get a reference users can quote; the details stay in the log.
        ref = uuid.uuid4().hex[:8]
        log.error("unhandled error (ref %s): %s", ref, type(error).__name__, exc_info=error)
        if respond is not None and (body or {}).get("response_url"):
            respond(response_type="ephemeral", replace_original=False,
                    text=f"Sorry, something went wrong on my side (reference `{ref}`). Nothing else was changed.")

    return app
