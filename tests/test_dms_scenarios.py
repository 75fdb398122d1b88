"""The console sandbox's DMS-as-configured scenarios, as an on-call engineer sees them: the real Bolt app
and handlers in-process (syncbot.console), the pipeline in moto (endpoints made with their S3Settings and
PostgreSQLSettings), fakesnow and a scripted Aurora. Each gives the right heading, cause and buttons, and
no wrong button."""
import pytest
from console_scenarios import check_scenario, console_says

CASES = [
    ("date-partitioned", "Sync Lagging / Data Missing", "merge task STAGING.ORDERS_MERGE is suspended",
     {"Resume merge task"}, {"Restart DMS task"}),
    ("full-load-after-reload", "Sync Lagging / Data Missing", "no column was added in Aurora",
     set(), {"Fix columns", "Retry failed files"}),
    ("leftover-slot", "Healthy", "The sync is flowing", set(), {"Restart DMS task"}),
    ("slot-lost", "DMS Task Stalled", "cannot resume", {"Reload target"}, {"Restart DMS task", "Re-sync table"}),
    ("cdc-only-rows-missing", "Sync Lagging / Data Missing", "MigrationType is cdc", set(), {"Re-sync table"}),
    ("never-ran", "Sync Lagging / Data Missing", "start-replication", {"Restart DMS task"}, set()),
]


@pytest.mark.parametrize("scenario,heading,cause,wanted,unwanted", CASES, ids=[case[0] for case in CASES])
def test_each_scenario_gives_the_right_heading_cause_and_buttons(scenario, heading, cause, wanted, unwanted):
    check_scenario(scenario, heading, cause, wanted, unwanted)


def test_date_partitioned_files_are_found_in_their_hourly_folders():
    said = console_says("date-partitioned", "/sync-status orders")
    assert "date partitions YYYYMMDDHH/SLASH" in said and ".parquet" in said
    assert "no CDC files" not in said


def test_the_leftover_slot_is_in_the_maintenance_report_as_wal_retained_for_nobody():
    said = console_says("leftover-slot", "/sync-status maintenance")
    assert "WAL retained for nobody" in said and "ktwq2ezpxrgcewbi_00016390" in said
    assert "pg_drop_replication_slot('ktwq2ezpxrgcewbi_00016390_5f3c1b8e_8e61_4cd2_9a0e_2b0f4c1d7a11')" in said
