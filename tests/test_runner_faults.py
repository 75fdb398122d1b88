"""A slow or dead backend costs only its own checks; the answer comes within the deadline."""
from dataclasses import replace
import threading
import time

from bot.diagnostics.runner import Diagnoser
from bot.gateways import Gateways
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
    # The catalog names the bucket: with DMS dead, its target endpoint cannot say where the files are.
    orders = replace(sandbox.catalog.find("orders"), s3_bucket="acme-cdc", s3_prefix="dms")
    diag = Diagnoser(swap(sandbox, dms=Dead("AccessDeniedException"), s3=Dead("ListObjectsV2 failed: AccessDenied"))
                     ).diagnose(orders)
    by = {c.name: c for c in diag.checks}
    assert by[CheckName.DMS].summary == "unknown: DMS: AccessDeniedException"
    assert by[CheckName.LATENCY].status is Status.UNKNOWN
    assert by[CheckName.S3].summary == "unknown: S3: ListObjectsV2 failed: AccessDenied"
    # Without the catalog's bucket nothing says where to look, and the check says why.
    bare = Diagnoser(swap(sandbox, dms=Dead("AccessDeniedException"))).diagnose(sandbox.catalog.find("orders"))
    s3 = bare.check(CheckName.S3)
    assert s3.status is Status.UNKNOWN and "AccessDeniedException" in s3.details[0]
    assert by[CheckName.SNOWPIPE].status is Status.FAILING
    assert diag.verdict.section is Section.LAGGING and diag.verdict.where is Where.DOWNSTREAM


def test_unexpected_errors_become_unknown_with_a_reference_and_no_message(make_sandbox):
    sandbox = make_sandbox("healthy")
    diag = Diagnoser(swap(sandbox, aurora=Broken())).diagnose(sandbox.catalog.find("orders"))
    schema = diag.check(CheckName.SCHEMA)
    assert schema.status is Status.UNKNOWN and "RuntimeError, ref " in schema.summary
    assert "hunter2" not in schema.summary
    assert diag.verdict.section is Section.HEALTHY  # the deciding checks all answered


class InFlight:
    """Counts how many backend calls are in progress at once (a structural check, not a timing one)."""

    def __init__(self):
        self.now = self.peak = 0
        self.lock = threading.Lock()

    def wrap(self, inner):
        tracker = self

        class Wrapped:
            def __getattr__(self, name):
                attr = getattr(inner, name)
                if not callable(attr):
                    return attr

                def call(*args, **kwargs):
                    with tracker.lock:
                        tracker.now += 1
                        tracker.peak = max(tracker.peak, tracker.now)
                    try:
                        time.sleep(0.05)  # long enough for independent calls to overlap
                        return attr(*args, **kwargs)
                    finally:
                        with tracker.lock:
                            tracker.now -= 1

                return call

        return Wrapped()


def test_checks_run_concurrently(make_sandbox):
    sandbox = make_sandbox("healthy")
    flight = InFlight()
    gws = swap(sandbox, **{name: flight.wrap(getattr(sandbox.gateways, name)) for name in
                           ("dms", "s3", "snowflake", "aurora")})
    diag = Diagnoser(gws, timeout=30).diagnose(sandbox.catalog.find("orders"))
    assert diag.verdict.section is Section.HEALTHY
    # Every backend's first calls start together; one after another the peak would be 1.
    assert flight.peak >= 4


def test_snowflake_that_cannot_be_reached_says_so_in_its_checks(make_sandbox):
    from snowflake.connector.errors import OperationalError

    from bot.gateways.snowflake import SnowflakeGateway

    def connect():
        raise OperationalError(msg="Failed to connect to DB: acme.snowflakecomputing.com:443, timed out",
                               errno=250001)

    sandbox = make_sandbox("healthy")
    diag = Diagnoser(swap(sandbox, snowflake=SnowflakeGateway(connect))).diagnose(sandbox.catalog.find("orders"))
    for name in (CheckName.SNOWPIPE, CheckName.FRESHNESS, CheckName.SCHEMA):
        check = diag.check(name)
        assert check.status is Status.UNKNOWN
        assert "could not connect: Failed to connect to DB: acme.snowflakecomputing.com:443" in check.summary
        assert "unexpectedly" not in check.summary
    assert diag.check(CheckName.DMS).status is Status.OK
    assert diag.verdict.section is Section.UNKNOWN  # Snowpipe and freshness decide; they could not run
