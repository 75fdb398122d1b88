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
