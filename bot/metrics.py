"""The process's Prometheus metrics (prometheus_client's default registry), one place for all of them.

Labels are only ever values from a closed set that this code or its vendors define (a verdict, a
check's name, a Slack method and error code, a fix kind, a queue) or a catalog table name: never what
a person typed and never a secret. README's "Metrics" lists each with what to alert on."""
from __future__ import annotations

from typing import Callable

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# No `*_created` series beside every counter: Prometheus does not need them, and they double the scrape.
disable_created_metrics()

DIAGNOSES = Counter("syncbot_diagnoses", "Table diagnoses made, by verdict (runbook section)", ["verdict"])
CHECK_SECONDS = Histogram("syncbot_check_duration_seconds", "Time until a check's answers were in, per check",
                          ["check"], buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16))
CHECK_UNKNOWNS = Counter("syncbot_check_unknowns", "Checks that could not tell, by check and reason "
                         "(timeout, refused, error, inconclusive)", ["check", "reason"])
ACK_SECONDS = Histogram("syncbot_ack_latency_seconds", "From a Slack request's arrival to its acknowledgement",
                        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 3))
SLACK_ERRORS = Counter("syncbot_slack_api_errors", "Slack Web API calls refused, by method and Slack's error code",
                       ["method", "error"])
APPROVALS = Counter("syncbot_approvals", "Approval state machine transitions", ["transition"])
FIXES = Counter("syncbot_fixes", "Fix runs ended in the worker, by fix kind and outcome", ["kind", "outcome"])
TAKEOVERS = Counter("syncbot_lease_takeovers", "Running requests claimed from a worker that died or handed over")
RECOVERIES = Counter("syncbot_recoveries", "Stranded requests (lease lapsed, queue entry lost) queued again")
JOBS_WAITING = Gauge("syncbot_jobs_waiting", "Jobs waiting in each worker queue", ["queue"])
ALERTS = Counter("syncbot_alerts", "Alert posts in the alert channels: annotated, suppressed (a burst's later "
                 "alerts) or ignored (no catalog table, a retry, not an alert)", ["outcome"])


def watch_queue(name: str, length: Callable[[], int]) -> None:
    """The queue's length, read at scrape time (a failed read shows as -1, not as an empty queue)."""
    def read() -> float:
        try:
            return float(length())
        except Exception:  # noqa: BLE001 - a scrape never fails because Redis did
            return -1.0
    JOBS_WAITING.labels(name).set_function(read)


def exposition() -> tuple[bytes, str]:
    """The text format body and its content type, for GET /metrics."""
    return generate_latest(), CONTENT_TYPE_LATEST
