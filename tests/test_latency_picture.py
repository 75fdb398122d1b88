"""The latency graph in the diagnosis thread: CloudWatch renders it with the latency check's own query
(GetMetricWidgetImage, checked against botocore's model of the call), files_upload_v2 posts it, and a
failed render or upload costs only the picture."""
import json

import boto3
import pytest
from botocore.stub import Stubber

from bot.gateways import GatewayError
from bot.gateways.dms import DmsGateway, _latency_queries
from syncbot.sandbox.slack import bolt_request, slash_command_body

CHANNEL = "C0INCIDNT"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 16


def cloudwatch():
    return boto3.client("cloudwatch", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")


def test_the_picture_asks_cloudwatch_for_the_checks_own_metrics():
    client, seen = cloudwatch(), []
    client.meta.events.register("provide-client-params.cloudwatch.GetMetricWidgetImage",
                                lambda params, **_: seen.append(params))
    with Stubber(client) as stub:  # validates the request against botocore's model of the call
        stub.add_response("get_metric_widget_image", {"MetricWidgetImage": PNG})
        assert DmsGateway(None, client, None).latency_image("dms-prod", "RESOURCEID", 3) == PNG
    [params] = seen
    assert params["OutputFormat"] == "png"
    sent, query = json.loads(params["MetricWidget"]), _latency_queries([("dms-prod", "RESOURCEID")])
    assert [m[:6] for m in sent["metrics"]] == [
        ["AWS/DMS", q["MetricStat"]["Metric"]["MetricName"], "ReplicationInstanceIdentifier", "dms-prod",
         "ReplicationTaskIdentifier", "RESOURCEID"] for q in query]
    assert (sent["period"], sent["stat"], sent["start"]) == (query[0]["MetricStat"]["Period"],
                                                            query[0]["MetricStat"]["Stat"], "-PT3H")


@pytest.mark.parametrize("answer", [
    {"service_error_code": "AccessDenied", "service_message": "not authorized"},
    {"service_response": {"MetricWidgetImage": b"<html>no</html>"}},
])
def test_a_failed_render_is_a_gateway_error(answer):
    client = cloudwatch()
    with Stubber(client) as stub:
        if "service_error_code" in answer:
            stub.add_client_error("get_metric_widget_image", **answer)
        else:
            stub.add_response("get_metric_widget_image", answer["service_response"])
        with pytest.raises(GatewayError):
            DmsGateway(None, client, None).latency_image("dms-prod", "RESOURCEID", 3)


def sync_status(h, table="orders"):
    h.app.dispatch(bolt_request(slash_command_body(table, "U0ALICE01", CHANNEL, h.slack.response_url()), h.secret))
    return h.slack.of("chat.postMessage")[0]


def test_the_picture_is_uploaded_into_the_diagnosis_thread(harness):
    h = harness("stalled")
    posted = sync_status(h)
    [complete] = h.slack.of("files.completeUploadExternal")
    assert complete.params["channel_id"] == CHANNEL and complete.params["thread_ts"] == posted.ts
    [shared] = json.loads(complete.params["files"])
    assert "CDCLatencySource / CDCLatencyTarget" in shared["title"]
    assert h.slack.uploads[shared["id"]].startswith(b"\x89PNG")


def test_a_failed_render_costs_only_the_picture(harness, monkeypatch):
    h = harness("stalled")

    def broken(*args, **kwargs):
        raise GatewayError("GetMetricWidgetImage failed: Throttling")

    monkeypatch.setattr(h.sandbox.gateways.dms, "latency_image", broken)
    posted = sync_status(h)
    assert posted.params["text"].startswith("orders: DMS Task Stalled")
    assert h.slack.of("files.getUploadURLExternal") == []


def test_a_failed_upload_costs_only_the_picture(harness, monkeypatch):
    h = harness("stalled")
    original = h.slack.answer
    monkeypatch.setattr(h.slack, "answer", lambda method, params: {"ok": False, "error": "not_in_channel"}
                        if method == "files.getUploadURLExternal" else original(method, params))
    response = h.app.dispatch(bolt_request(slash_command_body("orders", "U0ALICE01", CHANNEL,
                                                              h.slack.response_url()), h.secret))
    assert response.status == 200
    assert h.slack.of("chat.postMessage")[0].params["text"].startswith("orders: DMS Task Stalled")
    assert h.slack.of("files.completeUploadExternal") == []


def test_each_annotated_table_gets_its_picture_in_the_alert_thread(harness):
    from test_alert_events import deliver, recorded

    h = harness("stalled")
    alarm = recorded("chatbot_cloudwatch_alarm", h)
    assert deliver(h, alarm).status == 200
    shared = h.slack.of("files.completeUploadExternal")
    assert [c.params["thread_ts"] for c in shared] == [alarm["ts"]] * 3
    assert [json.loads(c.params["files"])[0]["title"].split(":")[0] for c in shared] == ["orders", "customers",
                                                                                       "payments"]


def test_no_picture_without_a_message_to_thread_under(harness):
    h = harness("stalled")
    h.slack.not_in_channels.add(CHANNEL)  # the answer goes through response_url: it has no ts
    h.app.dispatch(bolt_request(slash_command_body("orders", "U0ALICE01", CHANNEL, h.slack.response_url()), h.secret))
    assert h.slack.of("response_url") and h.slack.of("files.getUploadURLExternal") == []


def test_an_unexpected_failure_of_the_picture_costs_only_the_picture(harness, monkeypatch, caplog):
    h = harness("stalled")

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the renderer")

    monkeypatch.setattr(h.sandbox.gateways.dms, "latency_image", broken)
    posted = sync_status(h)
    assert posted.params["text"].startswith("orders: DMS Task Stalled")
    assert h.slack.of("files.getUploadURLExternal") == []
    assert "latency picture for orders not posted: RuntimeError" in caplog.text
