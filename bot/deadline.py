"""Waiting for a backend call under a round's deadline. Every answer that collects calls at once (the
diagnosis, the task log, the maintenance report) waits the same way and says "unknown" the same way:
late, refused or broken, one call costs only its own part of the answer."""
from __future__ import annotations

import logging
import time
import uuid
from concurrent.futures import Future, TimeoutError as FutureTimeout
from typing import Any

from .gateways import GatewayError

log = logging.getLogger(__name__)


class Unanswered(Exception):
    """A backend call that gave no usable answer; the message says why, fit to show a user. `reason`
    is its kind for the metrics (timeout, refused, error): never the message, which may quote data."""

    def __init__(self, message: str, reason: str = "error"):
        super().__init__(message)
        self.reason = reason


def answer(future: Future, deadline: float, backend: str, timeout: float) -> Any:
    """The call's result, waiting at most until `deadline` (time.monotonic()); `timeout` is the round's
    whole allowance, as the reason states it."""
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        raise Unanswered(f"{backend} did not answer within {timeout:g}s", "timeout") from None
    except GatewayError as exc:
        raise Unanswered(f"{backend}: {exc}", "refused") from None
    except Exception as exc:  # noqa: BLE001 - one broken backend must not sink the whole answer
        raise Unanswered(unexpected(backend, exc)) from None


def unexpected(backend: str, exc: BaseException) -> str:
    """A failure nobody planned for: the details go to the log under a reference users can quote."""
    ref = uuid.uuid4().hex[:8]
    log.error("call to %s failed unexpectedly (ref %s)", backend, ref, exc_info=exc)
    return f"{backend} failed unexpectedly ({type(exc).__name__}, ref {ref})"
