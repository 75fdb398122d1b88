"""The console does the whole workflow: a reason after `resync` or in the form, the App Home and its
Approve, and a snooze from an alert annotation's menu."""
from test_cli import run

ALERT = 'alert ALARM: "orders-freshness" in US East (N. Virginia): PUBLIC.ORDERS is stale'


def test_console_reason_form_home_and_approval_from_the_home():
    script = ("/sync-status resync orders\nreason\nreason the 04:00 load skipped a file\n"
              "as U0BOB0002\nhome\npress 3\n")
    result = run("console", "--scenario", "healthy", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "--- syncbot opened a form: Re-sync table ---" in out
    assert "(the form says) Say why this should run" in out  # the empty reason refused on the field
    assert "Why: the 04:00 load skipped a file" in out
    home = out.split("U0BOB0002> home")[1]
    assert "--- your App Home (U0BOB0002) ---" in home and "[3] Approve" in home
    assert "Approved: Re-sync table of orders is queued" in home
    assert "== Re-sync table orders: done ==" in home
    assert "--- syncbot posted in #D0ALICE01 ---" in home  # Alice's direct messages
    assert "Your request for Re-sync table of orders was approved by <@U0BOB0002>" in home


def test_console_snooze_from_the_annotations_menu():
    script = f"{ALERT}\nsnooze orders 1h\n{ALERT}\n"
    result = run("console", "--scenario", "pipe-paused", stdin=script)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Alerts about orders snoozed by <@U0ALICE01> until" in out.replace("*", "")
    after = out.split(f"U0ALICE01> {ALERT[:20]}")[-1]
    assert "== orders:" not in after and "Another alert" not in after  # the next alert is silenced
