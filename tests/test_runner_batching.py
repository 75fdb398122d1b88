"""A multi-table round asks each backend once per task or per statement, not once per table; a
missing object in a batched read costs only its own table's check; rounds share calls in flight."""
import threading
import time

from bot.diagnostics import runner
from bot.diagnostics.runner import Diagnoser
from bot.gateways import Gateways
from bot.models import CheckName, Section, Status
from syncbot.sandbox.seams import backend


class Counting:
    """Counts calls per method name at the gateway seam (and can hold them back until released)."""

    def __init__(self, inner, gate=None):
        self._inner, self._gate = inner, gate
        self.counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            with self._lock:
                self.counts[name] = self.counts.get(name, 0) + 1
            if self._gate is not None:
                self._gate.wait(10)
            return attr(*args, **kwargs)

        return call


def counted(sandbox, gate=None):
    gw = sandbox.gateways
    return Gateways(dms=Counting(gw.dms, gate), s3=Counting(gw.s3), snowflake=Counting(gw.snowflake),
                    aurora=Counting(gw.aurora))


def test_fleet_round_makes_one_call_per_task_and_per_statement(make_sandbox):
    sandbox = make_sandbox("pipe-paused")
    gws = counted(sandbox)
    before = backend(sandbox.calls, "snowflake", logins=False)
    diags = Diagnoser(gws).diagnose_many(list(sandbox.catalog.tables))
    assert [d.table for d in diags] == ["orders", "customers", "payments"]
    assert all(c.status is not Status.UNKNOWN for d in diags for c in d.checks)
    assert diags[0].verdict.section is Section.LAGGING and diags[1].verdict.section is Section.HEALTHY
    # Three tables of one task: the task, its statistics, its endpoints, its instance and its latency once each.
    assert gws.dms.counts == {"task": 1, "table_statistics": 1, "cdc_latency_many": 1, "target": 1, "source": 1,
                              "instance": 1}
    assert gws.s3.counts == {"newest_cdc_files": 3}  # one listing per table prefix
    assert gws.snowflake.counts == {"pipe_statuses": 1, "copy_histories": 1, "newest_many": 1,
                                    "column_types_many": 1, "task_states": 1, "task_histories": 1, "row_counts": 1}
    assert gws.aurora.counts == {"columns_many": 1, "replication_slots": 1, "row_counts": 1}
    # Six tables' columns (final + staging of three) in one information_schema statement.
    assert backend(sandbox.calls, "snowflake", logins=False) - before == 7  # one statement (or faked one) a read


def test_a_missing_object_in_a_batch_costs_only_its_own_table(make_sandbox):
    sandbox = make_sandbox("healthy")
    del sandbox.snowflake.pipes["STAGING.CUSTOMERS_PIPE"]
    sandbox.fakesnow.connect(database="SYNC", schema="PUBLIC").cursor().execute("DROP TABLE PUBLIC.PAYMENTS")
    by_table = {d.table: {c.name: c for c in d.checks} for d in Diagnoser(sandbox.gateways).diagnose_many(
        list(sandbox.catalog.tables))}
    assert "does not exist" in by_table["customers"][CheckName.SNOWPIPE].summary
    assert by_table["customers"][CheckName.SNOWPIPE].status is Status.UNKNOWN
    for check in (CheckName.FRESHNESS, CheckName.SCHEMA, CheckName.ROWS):
        assert by_table["payments"][check].status is Status.UNKNOWN
        assert "PAYMENTS" in by_table["payments"][check].summary.upper()
    untouched = [by_table["orders"][n] for n in CheckName] + [
        by_table["customers"][n] for n in CheckName if n is not CheckName.SNOWPIPE] + [
        by_table["payments"][n] for n in CheckName if n not in (CheckName.FRESHNESS, CheckName.SCHEMA, CheckName.ROWS)]
    assert all(c.status is not Status.UNKNOWN for c in untouched), [c for c in untouched if c.status is Status.UNKNOWN]


def test_concurrent_rounds_share_the_calls_in_flight(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    gate = threading.Event()
    gws = counted(sandbox, gate)
    diagnoser = Diagnoser(gws)
    orders, customers = sandbox.catalog.find("orders"), sandbox.catalog.find("customers")
    answers = {}
    threads = [threading.Thread(target=lambda s=s: answers.update({s.name: diagnoser.diagnose(s)}))
               for s in (orders, customers, orders)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)  # every round has asked (rounds ask when they start); the DMS calls are held
    gate.set()
    for thread in threads:
        thread.join()
    assert answers["orders"].verdict.healthy and answers["customers"].verdict.healthy
    # Three rounds over two tables of one task: the task, its statistics, endpoints, instance and latency asked once.
    assert gws.dms.counts == {"task": 1, "table_statistics": 1, "cdc_latency_many": 1, "target": 1, "source": 1,
                              "instance": 1}


def test_a_new_round_asks_again_once_the_previous_answers_are_in(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    gws = counted(sandbox)
    diagnoser = Diagnoser(gws)
    orders = sandbox.catalog.find("orders")
    sent = []
    sandbox.dms_client.meta.events.register("before-call", lambda model, **_: sent.append(model.name))
    diagnoser.diagnose(orders)
    diagnoser.diagnose(orders)
    assert gws.dms.counts == {"task": 2, "table_statistics": 2, "cdc_latency_many": 2, "target": 2, "source": 2,
                              "instance": 2}
    # The endpoints and the instance change only when someone reconfigures DMS: the second round reads
    # them from the gateway's cache (bot.gateways.cache), the rest from DMS again.
    assert sorted(sent) == sorted(["DescribeReplicationTasks"] * 2 + ["DescribeTableStatistics"] * 2
                                  + ["DescribeEndpoints"] * 2 + ["DescribeReplicationInstances"])


def test_rounds_waiting_for_a_busy_backend_share_its_statements(make_sandbox, monkeypatch):
    monkeypatch.setitem(runner.LANE_WIDTH, "snowflake", 1)  # one statement at a time: the lane is busy
    sandbox = make_sandbox("healthy", real_aurora=False)
    gate = threading.Event()
    gws = Gateways(dms=sandbox.gateways.dms, s3=sandbox.gateways.s3, snowflake=Counting(sandbox.snowflake, gate),
                   aurora=sandbox.gateways.aurora)
    diagnoser = Diagnoser(gws)
    answers = []
    threads = [threading.Thread(target=lambda s=s: answers.append(diagnoser.diagnose(s)))
               for s in sandbox.catalog.tables]
    threads[0].start()
    while not gws.snowflake.counts:  # the first round's first statement has started, and is held
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    time.sleep(0.3)  # the other rounds have asked
    gate.set()
    for thread in threads:
        thread.join()
    assert sorted(d.table for d in answers if d.verdict.healthy) == ["customers", "orders", "payments"]
    # Three rounds, seven reads each: the first round's pipe statement went alone; everything the
    # rounds asked while it ran was merged into the statements waiting for the lane.
    assert gws.snowflake.counts == {"pipe_statuses": 2, "copy_histories": 1, "newest_many": 1,
                                    "column_types_many": 1, "task_states": 1, "task_histories": 1, "row_counts": 1}


def test_multi_table_reads_are_cut_into_statements_of_chunk_size(make_sandbox, monkeypatch):
    # runner.CHUNK is the one place batch sizes are set: the gateway runs one statement per call.
    monkeypatch.setitem(runner.CHUNK, "pipe", 2)
    sandbox = make_sandbox("healthy", real_aurora=False)
    sizes = []
    inner = sandbox.snowflake.pipe_statuses
    monkeypatch.setattr(sandbox.snowflake, "pipe_statuses", lambda pipes: sizes.append(len(pipes)) or inner(pipes))
    diags = Diagnoser(sandbox.gateways).diagnose_many(list(sandbox.catalog.tables))
    assert sorted(sizes) == [1, 2] and all(d.verdict.healthy for d in diags)
