"""The re-sync's full-load files under names Snowpipe loaded before: DMS rewrites LOAD00000001.csv… and
the sandbox's Snowpipe skips a name its pipe already loaded (its load metadata, per pipe, 14 days), so
only the re-sync's own COPY brings those in; every reloaded file reaches the table exactly once."""
import json

from clicks import BOB, click, request_resync, run_worker, statements


def test_the_request_lists_the_copy_of_the_files_snowpipe_skips(harness):
    h = harness("resync-loaded-before")
    _, message, _ = request_resync(h)
    text = json.dumps(message.params["blocks"])
    assert ("COPY INTO STAGING.ORDERS_CDC FROM @SYNC.STAGING.CDC_STAGE/dms/public/orders/ FILES = (&lt;the reloaded "
            "LOAD\\u2026 files Snowpipe skips&gt;)") in text or "FILES = (<the reloaded LOAD" in text
    assert "Snowpipe skips a name it loaded in the last 14 days" in text


def test_every_reloaded_file_is_loaded_exactly_once(harness):
    h = harness("resync-loaded-before")
    h.wiring.runtime.catchup_timeout_s = 2  # without the COPY the re-sync ends short at once, not in 30 min
    _, message, buttons = request_resync(h)
    assert "queued" in click(h, buttons["Approve"], BOB)
    run_worker(h)
    final = h.slack.messages[message.ts].params
    assert final["text"] == "Re-sync table orders: done", json.dumps(final["blocks"])
    # Snowpipe loaded the one new name itself; the two it knew came in by the re-sync's COPY, once each.
    assert h.sandbox.full_load_loads == {"LOAD00000001.csv": 1, "LOAD00000002.csv": 1, "LOAD00000003.csv": 1}
    [copy] = statements(h, "COPY INTO")
    assert "FILES = ('LOAD00000001.csv', 'LOAD00000002.csv')" in copy
    text = json.dumps(final["blocks"])
    assert "2 rewritten full-load files Snowpipe skips" in text and "1 with new names left to Snowpipe" in text
    assert "rows now: Aurora 3,000 rows, PUBLIC.ORDERS 3,000" in text


def test_the_copy_repeated_after_a_crash_loads_nothing_twice(harness):
    """A worker killed after the COPY ran, before its checkpoint, runs the step again: COPY without FORCE
    finds the files in the table's load metadata (TRUNCATE cleared it before) and skips them."""
    h = harness("resync-loaded-before")
    _, _, buttons = request_resync(h)
    click(h, buttons["Approve"], BOB)
    run_worker(h)
    sf = h.sandbox.snowflake
    sf.execute(*_copy_again(statements(h, "COPY INTO")[0]))
    assert h.sandbox.full_load_loads == {"LOAD00000001.csv": 1, "LOAD00000002.csv": 1, "LOAD00000003.csv": 1}


def _copy_again(shown: str):
    head, files = shown.split(" FILES = (")
    names = [n.strip(" '") for n in files.split(")")[0].split(",")]
    return head + " FILES = (" + ", ".join(["%s"] * len(names)) + ")", tuple(names)
