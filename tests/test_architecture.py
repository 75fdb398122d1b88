"""The dependency rule, checked mechanically: bot/ never imports Slack; handlers/ never imports
backend drivers; production code never imports the sandbox's fakes (import-linter contracts in
pyproject.toml)."""
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe, "import-linter is a test dependency"
    result = subprocess.run([exe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken." in result.stdout


def test_serving_loads_none_of_the_sandbox_packages():
    """`syncbot serve` works on a production install, without the [sandbox] extra: building the CLI and
    the server's modules imports none of moto, fakesnow, fakeredis (the sandbox imports them lazily)."""
    code = ("import contextlib, io, sys, syncbot.cli, syncbot.server, syncbot.wiring, bot.services\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "    syncbot.cli.main(['serve', '--help'])\n"
            "print(sorted(m for m in ('moto', 'fakesnow', 'fakeredis') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# Slack's wire format: mrkdwn mentions and the keys of its message payloads. The core receives plain
# posts (bot.alerts.Post) and returns typed results; handlers/ parse and word them.
SLACK_WIRE = ("<@", "<!subteam", "<!here", "<!channel", "<#", '"attachments"', '"blocks"', '"subtype"', '"bot_id"',
              '"thread_ts"', "'attachments'", "'blocks'", "'subtype'", "'bot_id'", "'thread_ts'", "mrkdwn")


def slack_wire_in_core(root: Path) -> list[str]:
    found = []
    for path in sorted((root / "bot").rglob("*.py")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            found += [f"{path.relative_to(root)}:{number}: {mark}" for mark in SLACK_WIRE if mark in line]
    return found


def test_the_core_does_not_know_slacks_wire_format():
    assert slack_wire_in_core(ROOT) == []


def test_the_wire_format_scan_finds_what_it_looks_for(tmp_path):
    (tmp_path / "bot" / "remediation").mkdir(parents=True)
    (tmp_path / "bot" / "alerts.py").write_text('kind = event.get("subtype")\nwho = f"<@{user}>"\n')
    (tmp_path / "bot" / "remediation" / "service.py").write_text('who = f"<!subteam^{group}>"\n')
    assert slack_wire_in_core(tmp_path) == ["bot/alerts.py:1: \"subtype\"", "bot/alerts.py:2: <@",
                                            "bot/remediation/service.py:1: <!subteam"]
