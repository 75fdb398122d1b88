"""A slow or dead backend costs only its own checks; the answer comes within the deadline."""
import time

from bot.diagnostics.runner import Diagnoser, Gateways
from bot.gateways import GatewayError
from bot.models import CheckName, Section, Status, Where


class Slow:
    def __init__(self, inner, seconds):
        self._inner, self._seconds = inner, seconds

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            time.sleep(self._seconds)
            return attr(*args, **kwargs)

        return call


class Dead:
    def __init__(self, reason):
        self._reason = reason

    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise GatewayError(self._reason)

        return call


class Broken:
    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise RuntimeError("password=hunter2 leaked in a driver message")

        return call


def swap(sandbox, **replace):
    gw = sandbox.gateways
    return Gateways(**{**{"dms": gw.dms, "s3": gw.s3, "snowflake": gw.snowflake, "aurora": gw.aurora}, **replace})


def test_slow_snowflake_makes_only_its_checks_unknown(make_sandbox):
    sandbox = make_sandbox("dms-failed")
    started = time.monotonic()
    diag = Diagnoser(swap(sandbox, snowflake=Slow(sandbox.gateways.snowflake, 3)), timeout=0.5).diagnose(
        sandbox.catalog.find("orders"))
    elapsed = time.monotonic() - started
    by = {c.name: c for c in diag.checks}
    for name in (CheckName.SNOWPIPE, CheckName.FRESHNESS, CheckName.SCHEMA):
        assert by[name].status is Status.UNKNOWN and "did not answer within 0.5s" in by[name].summary
    assert by[CheckName.DMS].status is Status.FAILING and by[CheckName.S3].status is not Status.UNKNOWN
    # The verdict still follows from what did answer.
    assert (diag.verdict.section, diag.verdict.where) == (Section.LAGGING, Where.UPSTREAM)
    assert elapsed < 2.5


def test_dead_aws_reports_reasons_and_keeps_the_snowflake_evidence(make_sandbox):
    sandbox = make_sandbox("pipe-paused")
    diag = Diagnoser(swap(sandbox, dms=Dead("AccessDeniedException"), s3=Dead("ListObjectsV2 failed: AccessDenied"))
                     ).diagnose(sandbox.catalog.find("orders"))
    by = {c.name: c for c in diag.checks}
    assert by[CheckName.DMS].summary == "unknown: DMS: AccessDeniedException"
    assert by[CheckName.LATENCY].status is Status.UNKNOWN
    assert by[CheckName.S3].summary == "unknown: S3: ListObjectsV2 failed: AccessDenied"
    assert by[CheckName.SNOWPIPE].status is Status.FAILING
    assert diag.verdict.section is Section.LAGGING and diag.verdict.where is Where.DOWNSTREAM


def test_unexpected_errors_become_unknown_with_a_reference_and_no_message(make_sandbox):
    sandbox = make_sandbox("healthy")
    diag = Diagnoser(swap(sandbox, aurora=Broken())).diagnose(sandbox.catalog.find("orders"))
    schema = diag.check(CheckName.SCHEMA)
    assert schema.status is Status.UNKNOWN and "RuntimeError, ref " in schema.summary
    assert "hunter2" not in schema.summary
    assert diag.verdict.section is Section.HEALTHY  # the deciding checks all answered


def test_checks_run_concurrently(make_sandbox):
    sandbox = make_sandbox("healthy")
    delay = 0.3
    gws = swap(sandbox, **{name: Slow(getattr(sandbox.gateways, name), delay) for name in
                           ("dms", "s3", "snowflake", "aurora")})
    started = time.monotonic()
    diag = Diagnoser(gws, timeout=10).diagnose(sandbox.catalog.find("orders"))
    elapsed = time.monotonic() - started
    assert diag.verdict.section is Section.HEALTHY
    # 12 delayed calls one after another would take 3.6 s; the longest chain is task -> statistics.
    assert elapsed < 6 * delay
