"""The DMS task log read (CloudWatch Logs FilterLogEvents) against moto's CloudWatch Logs, and the error
shapes moto does not produce through botocore's own Stubber and event hooks."""
from datetime import datetime, timedelta, timezone

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ReadTimeoutError
from botocore.stub import Stubber

from bot.gateways import GatewayError
from bot.gateways import dms as dms_module
from bot.gateways.dms import TASK_LOG_PATTERN, DmsGateway
from syncbot.sandbox.seams import backend


def gateway(sandbox):
    return DmsGateway(sandbox.dms_client, sandbox.cloudwatch_client, sandbox.logs_client)


def test_reads_the_tasks_own_group_and_stream_for_errors_and_warnings(make_sandbox):
    sandbox = make_sandbox("stalled", real_aurora=False)
    sent = []
    sandbox.logs_client.meta.events.register("provide-client-params.logs.FilterLogEvents",
                                             lambda params, **_: sent.append(params))
    gw = gateway(sandbox)
    task = gw.task("aurora-snowflake-cdc")
    before = backend(sandbox.calls, "dms", "cloudwatch", "logs")
    now = datetime.now(timezone.utc)
    log = gw.task_log("dms-prod", task.resource_id, now)
    [params] = sent
    assert params["logGroupName"] == "dms-tasks-dms-prod" == log.group
    assert params["logStreamNames"] == [f"dms-task-{task.resource_id}"] == [log.stream]
    assert params["filterPattern"] == TASK_LOG_PATTERN == '?"]E:" ?"]W:"'
    assert params["limit"] == dms_module.TASK_LOG_EVENTS
    assert params["endTime"] - params["startTime"] == 3 * 3600 * 1000 and log.hours == 3
    assert backend(sandbox.calls, "dms", "cloudwatch", "logs") - before == 1
    # moto ignores this filter pattern, so the info lines come back and the gateway drops them itself.
    assert {line.severity for line in log.lines} == {"E", "W"}
    assert sum(line.severity == "E" for line in log.lines) == 176 and len(log.lines) == 220
    assert log.lines == tuple(sorted(log.lines, key=lambda line: line.at)) and not log.more


def test_a_read_is_bounded_in_events_and_keeps_the_newest(make_sandbox, monkeypatch):
    """A window with more lines than the bound: the read of the whole window stops at it (oldest first),
    then the last minutes are read on their own, so the lines at the moment the task stopped are kept."""
    sandbox = make_sandbox("stalled", real_aurora=False)
    gw = gateway(sandbox)
    resource_id = gw.task("aurora-snowflake-cdc").resource_id
    monkeypatch.setattr(dms_module, "TASK_LOG_EVENTS", 5)
    now = datetime.now(timezone.utc)
    log = gw.task_log("dms-prod", resource_id, now)
    assert log.more and len(log.lines) <= 10
    assert log.lines[-1].at >= now - timedelta(minutes=10)  # the newest minutes are in
    assert log.lines == tuple(sorted(log.lines, key=lambda line: line.at))


def test_a_read_is_bounded_in_bytes(make_sandbox, monkeypatch):
    sandbox = make_sandbox("stalled", real_aurora=False)
    gw = gateway(sandbox)
    resource_id = gw.task("aurora-snowflake-cdc").resource_id
    monkeypatch.setattr(dms_module, "TASK_LOG_BYTES", 2000)
    log = gw.task_log("dms-prod", resource_id, datetime.now(timezone.utc))
    assert 0 < len(log.lines) < 20 and log.more
    assert sum(len(line.text.encode()) for line in log.lines) <= 2000


def test_a_long_line_is_cut(make_sandbox):
    sandbox = make_sandbox("healthy", real_aurora=False)
    gw = gateway(sandbox)
    resource_id = gw.task("aurora-snowflake-cdc").resource_id
    now = datetime.now(timezone.utc)
    sandbox.logs_client.put_log_events(
        logGroupName="dms-tasks-dms-prod", logStreamName=f"dms-task-{resource_id}",
        logEvents=[{"timestamp": int(now.timestamp() * 1000) - 1000,
                    "message": f"{now:%Y-%m-%dT%H:%M:%S} [TARGET_APPLY    ]E:  " + "x" * 5000}])
    [line] = gw.task_log("dms-prod", resource_id, now).lines
    assert len(line.text) == dms_module.TASK_LOG_LINE_CHARS and line.severity == "E"


def test_no_log_group_means_logging_is_off(make_sandbox):
    sandbox = make_sandbox("dms-failed", real_aurora=False)
    gw = gateway(sandbox)
    resource_id = gw.task("aurora-snowflake-cdc").resource_id
    sandbox.logs_client.delete_log_group(logGroupName="dms-tasks-dms-prod")
    log = gw.task_log("dms-prod", resource_id, datetime.now(timezone.utc))
    assert (log.missing, log.lines) == ("log group", ())


def stubbed(code: str, message: str):
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.add_client_error("filter_log_events", service_error_code=code, service_message=message,
                             http_status_code=400)
    stubber.activate()
    return DmsGateway(None, None, client)


def test_no_log_stream_means_logging_is_off():
    # AWS's answer when the group exists but the task never wrote its stream, as reported in
    # percona/rds_exporter#81: "ResourceNotFoundException: The specified log stream does not exist."
    gw = stubbed("ResourceNotFoundException", "The specified log stream does not exist.")
    log = gw.task_log("dms-prod", "ABC", datetime.now(timezone.utc))
    assert (log.missing, log.stream) == ("log stream", "dms-task-ABC")


def test_a_refused_read_is_a_gateway_error():
    gw = stubbed("AccessDeniedException", "User: arn:aws:iam::123456789012:user/syncbot is not authorized to "
                                          "perform: logs:FilterLogEvents")
    with pytest.raises(GatewayError, match="FilterLogEvents failed: AccessDeniedException"):
        gw.task_log("dms-prod", "ABC", datetime.now(timezone.utc))


def test_a_timeout_is_a_gateway_error():
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"total_max_attempts": 1}))

    def time_out(request, **_):
        raise ReadTimeoutError(endpoint_url=request.url)

    client.meta.events.register("before-send.logs.FilterLogEvents", time_out)
    with pytest.raises(GatewayError, match="FilterLogEvents failed: ReadTimeoutError"):
        DmsGateway(None, None, client).task_log("dms-prod", "ABC", datetime.now(timezone.utc) - timedelta(hours=1))


def paged(pages):
    """FilterLogEvents answers as AWS documents them (API reference, FilterLogEvents: it "can return
    empty results while there are more log events available through the token"), through botocore's
    Stubber, which checks each answer against the service model."""
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for page in pages:
        stubber.add_response("filter_log_events", page)
    stubber.activate()
    return DmsGateway(None, None, client), stubber


def event(minutes_ago, text, now):
    at = now - timedelta(minutes=minutes_ago)
    return {"logStreamName": "dms-task-ABC", "timestamp": int(at.timestamp() * 1000),
            "message": f"{at:%Y-%m-%dT%H:%M:%S} {text}", "ingestionTime": int(at.timestamp() * 1000),
            "eventId": f"e{minutes_ago}"}


def test_empty_pages_with_a_next_token_are_followed():
    now = datetime.now(timezone.utc).replace(microsecond=0)
    stop = "[TASK_MANAGER    ]E:  Task error notification received from subtask 0  (replicationtask.c:2880)"
    gw, stubber = paged([{"events": [], "nextToken": "t1"}, {"events": [], "nextToken": "t2"},
                         {"events": [event(2, stop, now)]}])
    log = gw.task_log("dms-prod", "ABC", now)
    stubber.assert_no_pending_responses()
    assert [line.text.split("]E:  ")[1][:10] for line in log.lines] == ["Task error"] and not log.more


def test_pages_beyond_the_bound_keep_the_newest_errors(monkeypatch):
    """Ten pages of old warnings, then the bound: the tail read finds the error at the stop."""
    monkeypatch.setattr(dms_module, "TASK_LOG_PAGES", 3)
    now = datetime.now(timezone.utc).replace(microsecond=0)
    old = "[SORTER          ]W:  Reading from source is paused  (sorter_transaction.c:110)"
    stop = "[SOURCE_CAPTURE  ]E:  Error reading from the replication slot  (postgres_test_decoding.c:385)"
    gw, stubber = paged([{"events": [event(170 - i, old, now)], "nextToken": f"t{i}"} for i in range(3)]
                        + [{"events": [], "nextToken": "tail1"}, {"events": [event(1, stop, now)]}])
    sent = []
    gw._logs.meta.events.register("provide-client-params.logs.FilterLogEvents", lambda params, **_: sent.append(params))
    log = gw.task_log("dms-prod", "ABC", now)
    stubber.assert_no_pending_responses()
    assert len(sent) == 5 and sent[3]["startTime"] == int((now - dms_module.TASK_LOG_TAIL).timestamp() * 1000)
    assert "nextToken" not in sent[3] and sent[4]["nextToken"] == "tail1"
    assert log.more and log.lines[-1].severity == "E" and "replication slot" in log.lines[-1].text
    assert [line.severity for line in log.lines] == ["W", "W", "W", "E"]
