"""The console scenarios of Snowflake as it really answers, as an on-call engineer sees them (the real Bolt
app and handlers in-process, the sandbox pipeline): the right heading, cause and buttons, and for the fixes
the statements that run."""
import pytest

from console_scenarios import check_scenario, console_says

CASES = [
    ("files-retried", "Healthy", "4 files loaded in the last 4 hours", set(), {"Retry failed files"}),
    ("task-failing-elsewhere", "Healthy", "merge task STAGING.ORDERS_MERGE is started; last run SUCCEEDED", set(),
     {"Resume merge task"}),
    ("merge-task-in-graph", "Sync Lagging / Data Missing", "is suspended (suspended by a user",
     {"Resume merge task"}, {"Restart DMS task"}),
    ("small-table-missing-rows", "Sync Lagging / Data Missing", "400 rows missing: Aurora has 1,000 (exact)",
     {"Re-sync table !"}, {"Restart DMS task"}),
    ("resync-loaded-before", "Sync Lagging / Data Missing", "2,998 rows missing", {"Re-sync table !"}, set()),
]


@pytest.mark.parametrize("scenario,heading,cause,wanted,unwanted", CASES, ids=[case[0] for case in CASES])
def test_each_scenario_gives_the_right_heading_cause_and_buttons(scenario, heading, cause, wanted, unwanted):
    check_scenario(scenario, heading, cause, wanted, unwanted)


def test_resuming_a_merge_task_in_a_graph_runs_what_snowflake_accepts_each_statement_shown():
    said = console_says("merge-task-in-graph", "/sync-status orders", "press 1")
    assert ("ALTER TASK <root> SUSPEND, ALTER TASK <task> RESUME, ALTER TASK <root> RESUME" in said)  # the confirm
    assert ("ran Resume merge task on orders: ALTER TASK STAGING.SYNC_ROOT SUSPEND: done; resumed merge task "
            "STAGING.ORDERS_MERGE; ALTER TASK STAGING.SYNC_ROOT RESUME: done") in said


def test_a_plain_resume_of_a_child_task_is_refused_by_the_sandbox_as_by_snowflake(make_sandbox):
    from bot.gateways import GatewayError

    sandbox = make_sandbox("merge-task-in-graph", real_aurora=False)
    with pytest.raises(GatewayError, match="Unable to update graph with root task SYNC.STAGING.SYNC_ROOT since that "
                                           "root task is not suspended"):
        sandbox.snowflake.resume_task("STAGING.ORDERS_MERGE")


def test_a_resync_of_files_loaded_before_copies_what_snowpipe_skips():
    said = console_says("resync-loaded-before", "/sync-status orders", "press 1 orders reloaded after a bad deploy",
                        "as U0BOB0002", "press 2")
    assert "FILES = (<the reloaded LOAD… files Snowpipe skips>)" in said
    assert ("COPY INTO STAGING.ORDERS_CDC: 2 rewritten full-load files Snowpipe skips (LOAD00000001.csv, "
            "LOAD00000002.csv); 1 with new names left to Snowpipe") in said
    assert "rows now: Aurora 3,000 rows, PUBLIC.ORDERS 3,000" in said and "== Re-sync table orders: done ==" in said
