"""GET /metrics on `syncbot serve`'s port, parsed with prometheus_client's own parser: the counters move
when a diagnosis, an approval and a fix happen, every name is syncbot_*, and no label carries what a
person typed."""
from __future__ import annotations

import threading
import urllib.request
from wsgiref.simple_server import make_server

from prometheus_client.parser import text_string_to_metric_families

from bot.models import ActionKind
from bot.remediation.approvals import State
from syncbot.sandbox.slack import signed_headers, slash_command_body
from syncbot.server import wsgi_app
from test_server import Quiet, ThreadingServer, post, wait_for

ALICE, BOB = "U0ALICE01", "U0BOB0002"


def scrape(base) -> tuple[dict, list]:
    with urllib.request.urlopen(base + "/metrics", timeout=5) as resp:
        assert resp.headers["Content-Type"].startswith("text/plain")
        families = list(text_string_to_metric_families(resp.read().decode()))
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families for s in f.samples}, families


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_with_a_diagnosis_an_approval_and_a_fix(harness, slack):
    h = harness("stalled")
    server = make_server("127.0.0.1", 0, wsgi_app(h.app, h.bot), server_class=ThreadingServer, handler_class=Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        before, _ = scrape(base)
        typed = "orders <!channel> secret-ish-text"
        body = slash_command_body(typed, ALICE, "C0INCIDNT", slack.response_url())
        assert post(base + "/slack/events", body, signed_headers(body, h.secret))[0] == 200  # no such table
        body = slash_command_body("orders", ALICE, "C0INCIDNT", slack.response_url())
        assert post(base + "/slack/events", body, signed_headers(body, h.secret))[0] == 200
        after_diagnosis = lambda: scrape(base)[0]  # noqa: E731
        assert wait_for(lambda: value(after_diagnosis(), "syncbot_diagnoses_total", verdict="stalled")
                        > value(before, "syncbot_diagnoses_total", verdict="stalled"), 20)

        slack.not_in_channels.add("C0NOTHERE")  # the diagnosis's post is refused there: counted, then sent otherwise
        body = slash_command_body("orders", ALICE, "C0NOTHERE", slack.response_url())
        assert post(base + "/slack/events", body, signed_headers(body, h.secret))[0] == 200
        assert wait_for(lambda: value(scrape(base)[0], "syncbot_slack_api_errors_total", method="chat.postMessage",
                                      error="not_in_channel")
                        > value(before, "syncbot_slack_api_errors_total", method="chat.postMessage",
                                error="not_in_channel"), 20)

        asked = h.wiring.remediation.request("orders", ActionKind.RESYNC, ALICE, "C0INCIDNT", "rows lost overnight")
        assert h.wiring.remediation.approve(asked.request.id, BOB).ok
        h.wiring.worker().work(burst=True)
        assert h.wiring.approvals.get(asked.request.id).state is State.SUCCEEDED

        after, families = scrape(base)
        grew = lambda name, **labels: value(after, name, **labels) > value(before, name, **labels)  # noqa: E731
        assert grew("syncbot_approvals_total", transition="requested")
        assert grew("syncbot_approvals_total", transition="approved")
        assert grew("syncbot_approvals_total", transition="succeeded")
        assert grew("syncbot_fixes_total", kind="resync", outcome="succeeded")
        assert grew("syncbot_check_duration_seconds_count", check="dms")
        assert grew("syncbot_ack_latency_seconds_count")
        assert ("syncbot_jobs_waiting", (("queue", "syncbot-resync"),)) in after

        names = {f.name for f in families if not f.name.startswith(("python_", "process_"))}
        assert names and all(n.startswith("syncbot_") for n in names), names
        labels = {v for (_, pairs) in after for _, v in pairs}
        assert not [v for v in labels if "secret-ish" in v or "<!channel>" in v]
    finally:
        server.shutdown()
        server.server_close()
