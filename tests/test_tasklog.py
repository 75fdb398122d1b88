"""The task log as evidence, without I/O: masking, de-duplication, what is shown, and when a log is
read at all. Lines have the shape DMS writes to CloudWatch Logs: "<time> [<component padded to
16>]<severity>:  <message>  (<source file>:<line>)", as quoted in public DMS troubleshooting write-ups
(e.g. "2023-05-24T13:52:50 [SOURCE_CAPTURE  ]W:  Value of column ... (postgres_pglogical.c:2550)"),
sometimes after a thread id ("00001234: 2023-...")."""
from datetime import datetime, timedelta, timezone

import pytest

from bot.diagnostics import tasklog
from bot.diagnostics.tasklog import distinct_lines, mask, with_task_log
from bot.gateways.dms import LogLine, TaskInfo, TaskLog
from bot.models import CheckName, CheckResult, Diagnosis, Section, Status, Verdict, Where

T0 = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
SLOT_ERROR = ("[SOURCE_CAPTURE  ]E:  Error reading from the replication slot 'dms_slot_cdc': could not receive "
              "data from WAL stream: SSL SYSCALL error: EOF detected [1020101]  (postgres_test_decoding.c:385)")
SWAP = ("[SORTER          ]W:  Reading from source is paused. Total storage used by swap files exceeded the limit "
        "1048576000 bytes  (sorter_transaction.c:110)")


def line(minutes: int, text: str, prefix: str = "") -> LogLine:
    at = T0 + timedelta(minutes=minutes)
    severity = text.split("]", 1)[1][0]
    return LogLine(at, severity, f"{prefix}{at:%Y-%m-%dT%H:%M:%S} {text}")


def log(*lines: LogLine, **kw) -> TaskLog:
    return TaskLog("dms-tasks-dms-prod", "dms-task-ABC", 3, T0 + timedelta(hours=3), tuple(lines), **kw)


DMS_OK = CheckResult(CheckName.DMS, Status.OK, "task cdc is running; table state: Table completed",
                     ("Status: running",))
DMS_FAILED = CheckResult(CheckName.DMS, Status.FAILING, "task cdc is failed (FATAL_ERROR)", ("Status: failed",))


@pytest.mark.parametrize("raw, shown", [
    ("connect 'host=db port=5432 user=dms password=Tr0ub4dor-3x sslmode=require'",
     "connect 'host=db port=5432 user=dms password=[masked] sslmode=require'"),
    ("PWD={a;b c};UID=dms", "PWD=[masked];UID=dms"),
    ("password: 'two words'", "password: [masked]"),
    ("ALTER ROLE dms PASSWORD 'hunter2'", "ALTER ROLE dms PASSWORD '[masked]'"),
    ("endpoint postgresql://dms_repl:s3cr3t@aurora.example:5432/app failed",
     "endpoint postgresql://[masked]@aurora.example:5432/app failed"),
    ("key AKIAIOSFODNN7EXAMPLE rejected", "key [masked] rejected"),
    ("Secret_Access_Key=wJalrXUtnFEMI/K7MDENG", "Secret_Access_Key=[masked]"),
])
def test_secrets_and_connection_strings_are_masked(raw, shown):
    assert mask(raw) == shown


def test_lines_without_secrets_are_left_alone():
    assert mask(SLOT_ERROR) == SLOT_ERROR and mask(SWAP) == SWAP


def test_a_repeated_line_is_one_entry_with_its_count_and_first_and_last_time():
    found = distinct_lines([line(m, SLOT_ERROR) for m in range(0, 180, 2)] + [line(30, SWAP), line(31, SWAP)])
    assert [(d.severity, d.count) for d in found] == [("E", 90), ("W", 2)]  # newest last-seen first
    assert (found[0].first, found[0].last) == (T0, T0 + timedelta(minutes=178))
    assert found[0].text == SLOT_ERROR  # the line's own timestamp is not part of it


def test_a_thread_id_before_the_timestamp_does_not_split_a_line():
    found = distinct_lines([line(1, SWAP, "00001234: "), line(2, SWAP), line(3, SWAP, "0000abcd: ")])
    assert [d.count for d in found] == [3]


def test_lines_differing_only_in_a_secret_are_one_masked_line():
    found = distinct_lines([line(1, "[SOURCE_CAPTURE  ]E:  login password=first failed"),
                            line(2, "[SOURCE_CAPTURE  ]E:  login password=second failed")])
    assert [(d.text, d.count) for d in found] == [("[SOURCE_CAPTURE  ]E:  login password=[masked] failed", 2)]


def test_evidence_shows_the_few_newest_distinct_lines_with_counts():
    lines = [line(m, SLOT_ERROR) for m in range(0, 100)] + [line(m, SWAP) for m in range(10, 170, 10)]
    check = with_task_log(DMS_FAILED, log(*lines))
    assert check.status is Status.FAILING and check.summary == DMS_FAILED.summary
    head, first, second = check.details[1:]
    assert "dms-tasks-dms-prod / dms-task-ABC" in head and "100 errors, 16 warnings, 2 distinct" in head
    assert first == f"16× 09:10–11:40 {SWAP}" and second == f"100× 09:00–10:39 {SLOT_ERROR}"


def test_errors_win_over_warnings_when_not_every_line_fits():
    warnings = [line(100 + i, f"[SORTER          ]W:  warning number {i}") for i in range(5)]
    errors = [line(i, f"[TARGET_APPLY    ]E:  error number {i}") for i in range(4)]
    check = with_task_log(DMS_FAILED, log(*errors, *warnings))
    shown = check.details[2:2 + tasklog.MAX_SHOWN]
    assert all("]E:" in d for d in shown) and "error number 3" in shown[0]  # newest error first
    assert check.details[-1] == "… and 6 more distinct lines in the log"


def test_a_long_line_is_cut_for_display():
    check = with_task_log(DMS_FAILED, log(line(1, "[TARGET_APPLY    ]E:  " + "x" * 1000)))
    assert len(check.details[-1]) < tasklog.SHOWN_CHARS + 20 and check.details[-1].endswith("…")


def test_a_running_task_with_errors_in_its_log_becomes_a_warning():
    check = with_task_log(DMS_OK, log(line(5, SLOT_ERROR), line(6, SWAP)))
    assert check.status is Status.WARNING and "its log has 1 errors" in check.summary
    only_warnings = with_task_log(DMS_OK, log(line(6, SWAP)))
    assert only_warnings.status is Status.OK and only_warnings.summary == DMS_OK.summary


def test_a_read_that_stopped_at_its_bound_says_so():
    check = with_task_log(DMS_FAILED, log(line(5, SLOT_ERROR), more=True))
    assert check.details[-1] == ("(more lines than one read takes: these are the newest, from 09:05 UTC; "
                                 "older ones are in the log)")
    assert not any("stopped at its bound" in d for d in with_task_log(DMS_FAILED, log(line(5, SLOT_ERROR))).details)


@pytest.mark.parametrize("missing, name", [("log group", "dms-tasks-dms-prod"), ("log stream", "dms-task-ABC")])
def test_logging_off_is_said_plainly_with_the_setting_not_as_an_error(missing, name):
    check = with_task_log(DMS_FAILED, log(missing=missing))
    assert check.status is Status.FAILING and check.summary == DMS_FAILED.summary
    assert check.details[-1] == (f"Task log: task logging is off (no {missing} {name}); turn it on with "
                                 "Logging.EnableLogging = true in the task settings")


def test_an_empty_log_and_an_unread_log_are_said():
    assert with_task_log(DMS_FAILED, log()).details[-1] == (
        "Task log dms-tasks-dms-prod / dms-task-ABC: no errors or warnings in the 3h before 12:00 UTC")
    unread = with_task_log(DMS_FAILED, "CloudWatch Logs: FilterLogEvents failed: AccessDeniedException")
    assert unread.status is Status.FAILING
    assert unread.details[-1] == "Task log: not read (CloudWatch Logs: FilterLogEvents failed: AccessDeniedException)"


def diagnosis(dms: CheckResult, section: Section) -> Diagnosis:
    return Diagnosis("orders", "public.orders", (dms,), Verdict(section, Where.UPSTREAM, ""), (), T0)


def test_only_a_task_shown_broken_is_worth_a_log_read():
    assert not tasklog.wanted(diagnosis(DMS_OK, Section.HEALTHY))
    assert not tasklog.wanted(diagnosis(DMS_OK, Section.LAGGING))  # broken downstream: the task is fine
    assert tasklog.wanted(diagnosis(DMS_FAILED, Section.LAGGING))
    assert tasklog.wanted(diagnosis(DMS_OK, Section.STALLED))
    unknown = CheckResult.unknown(CheckName.DMS, "DMS did not answer")
    assert not tasklog.wanted(diagnosis(unknown, Section.STALLED))  # no task: no log name


def test_a_stopped_task_is_read_up_to_just_after_it_stopped():
    now = T0 + timedelta(hours=6)
    running = TaskInfo("cdc", "arn:aws:dms:us-east-1:123456789012:task:ABC", "running",
                       stats={"StopDate": T0})
    assert tasklog.window_end(running, now) == now
    stopped = TaskInfo("cdc", running.arn, "failed", stats={"StopDate": T0})
    assert tasklog.window_end(stopped, now) == T0 + tasklog.AFTER_STOP
    just_now = TaskInfo("cdc", running.arn, "stopped", stats={"StopDate": now - timedelta(minutes=1)})
    assert tasklog.window_end(just_now, now) == now
    assert tasklog.window_end(TaskInfo("cdc", running.arn, "stopped"), now) == now
