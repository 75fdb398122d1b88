"""The CLI and the scripted console, as a user runs them (separate processes)."""
import json
import subprocess
import sys


def run(*args, stdin=None):
    return subprocess.run([sys.executable, "-m", "syncbot.cli", *args], input=stdin, capture_output=True,
                          text=True, timeout=120)


def test_diagnose_healthy_exits_zero():
    result = run("diagnose", "orders", "--sandbox", "healthy")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("orders (public.orders): Healthy")
    assert "[OK  ] DMS task" in result.stdout


def test_diagnose_unhealthy_json_exits_non_zero():
    result = run("diagnose", "orders", "--json", "--sandbox", "schema-mismatch")
    assert result.returncode == 1
    [diag] = json.loads(result.stdout)
    assert diag["verdict"]["section"] == "Schema Mismatch" and diag["verdict"]["healthy"] is False
    assert diag["actions"] == ["add_columns", "pause_pipe", "retry_files"]
    assert {c["name"] for c in diag["checks"]} >= {"DMS task", "Schema drift", "Replication slot"}


def test_diagnose_unknown_table_is_a_usage_error():
    result = run("diagnose", "ordrs", "--sandbox", "healthy")
    assert result.returncode == 2 and "Did you mean orders?" in result.stderr


def test_scripted_console_runs_commands_and_buttons_then_exits():
    script = "/sync-status orders\npress 1\n/sync-status\n"
    result = run("console", "--scenario", "pipe-paused", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== orders: Sync Lagging / Data Missing ==" in out
    assert "[1] Resume pipe" in out
    assert "== Sync status: 3 tables, 1 need attention ==" in out
    assert out.index("U0ALICE01> press 1") < out.index("== Sync status")
    assert "Warning" not in result.stderr  # fakesnow's Arrow-copy UserWarning is silenced in the sandbox


def test_bad_catalog_stops_with_the_line(tmp_path):
    catalog = tmp_path / "syncbot.toml"
    catalog.write_text('[[tables]]\nname = "orders"\nsource = "public.orders"\nflavour = "x"\n')
    result = subprocess.run([sys.executable, "-m", "syncbot.cli", "diagnose", "orders"], capture_output=True,
                            text=True, timeout=60, env={"SYNCBOT_CATALOG": str(catalog), "PATH": "/usr/bin:/bin",
                                                        "AURORA_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"})
    assert result.returncode == 2
    assert "line 4: unknown key `flavour`" in result.stderr


def test_console_runs_a_two_person_resync_to_completion():
    script = "/sync-status orders\npress 2 stalled since 04:00\npress 3\nas U0BOB0002\npress 3\n"
    result = run("console", "--scenario", "stalled", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== Re-sync table orders: approval needed ==" in out
    assert "You asked for this; a second approver has to approve it." in out  # Alice cannot approve her own
    assert "== Re-sync table orders: done ==" in out
    assert out.index("TRUNCATE TABLE STAGING.ORDERS_CDC: done") < out.index("DMS reloaded 2 rows")
    assert "== orders: Healthy ==" in out.split("Re-sync table orders: done")[1]


def test_console_alert_is_annotated_in_its_thread_and_its_buttons_work_there():
    script = 'alert ALARM: "orders-freshness" in US East (N. Virginia): PUBLIC.ORDERS is stale\npress 1\nalert lunch?\n'
    result = run("console", "--scenario", "pipe-paused", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "--- syncbot posted in #C0ALERTS1 (in thread) ---\n== orders: Sync Lagging / Data Missing ==" in out
    assert ("--- syncbot posted in #C0ALERTS1 (in thread) ---\n✅ <@U0ALICE01> ran Resume pipe on orders: "
            "pipe STAGING.ORDERS_PIPE is now RUNNING") in out
    assert out.rstrip().endswith("--- CloudWatch posted in #C0ALERTS1 ---\n  lunch?")  # chatter gets nothing


def test_diagnose_json_carries_the_deeper_checks():
    result = run("diagnose", "orders", "--json", "--sandbox", "merge-task-suspended")
    assert result.returncode == 1
    [diag] = json.loads(result.stdout)
    assert diag["actions"] == ["resume_task"]
    checks = {c["name"]: c for c in diag["checks"]}
    assert checks["Merge task"]["facts"]["suspended"] is True and checks["Merge task"]["status"] == "failing"
    assert checks["Row counts"]["facts"]["missing_rows"] is False
