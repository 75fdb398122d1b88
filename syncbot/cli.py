"""syncbot's command line: console (sandbox), diagnose, maintenance, doctor, serve."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from bot import logs, redaction
from bot.catalog import CatalogError
from bot.models import Section, Status
from bot.redaction import redact
from bot.settings import SettingsError

EXIT_HEALTHY, EXIT_UNHEALTHY, EXIT_USAGE, EXIT_UNKNOWN = 0, 1, 2, 3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="syncbot", description="ChatOps for the Aurora → Snowflake sync")
    sub = parser.add_subparsers(dest="cmd", required=True)

    console = sub.add_parser("console", help="the bot in a terminal, against a built-in sandbox pipeline")
    console.add_argument("--scenario", default="healthy", choices=_scenarios())
    console.add_argument("--user", default="U0ALICE01", help="the Slack user you act as")

    diagnose = sub.add_parser("diagnose", help="run every runbook check for a table (or all) and print the report")
    diagnose.add_argument("table", nargs="?", help="table name, Aurora schema.table or final table; all if omitted")
    diagnose.add_argument("--json", action="store_true", help="machine-readable output")
    diagnose.add_argument("--sandbox", metavar="SCENARIO", choices=_scenarios(),
                          help="diagnose the built-in sandbox instead of the configured pipeline")

    maintenance = sub.add_parser("maintenance", help="vacuum, WAL retention, DMS instance and S3 clean-up report")
    maintenance.add_argument("--json", action="store_true", help="machine-readable output")
    maintenance.add_argument("--sandbox", metavar="SCENARIO", choices=_scenarios(),
                             help="report on the built-in sandbox instead of the configured pipeline")

    doctor = sub.add_parser("doctor", help="check a deployment's settings, access and permissions, one line each")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument("--manifest", metavar="PATH", help="the Slack app manifest (default: ./manifest.yml)")
    doctor.add_argument("--read-only", action="store_true",
                        help="the remediation permissions are optional (a deployment that never applies fixes)")

    audit = sub.add_parser("audit", help="the approval audit trail, newest first")
    audit.add_argument("--table", help="only this table")
    audit.add_argument("--limit", type=int, default=50)

    worker = sub.add_parser("worker", help="run approved fixes in the background; takes over what a dead worker left")
    worker.add_argument("--queues", help="comma-separated queues to work (default: syncbot-fixes,syncbot-resync)")
    worker.add_argument("--metrics-port", type=int, metavar="PORT",
                        help="serve GET /metrics (Prometheus) on this port; off by default (0: any free port)")
    worker.add_argument("--metrics-host", default="0.0.0.0", help="the address --metrics-port listens on")

    serve = sub.add_parser("serve", help="run the Slack app (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))

    args = parser.parse_args(argv)
    # serve and worker log what they do; the one-shot commands only what went wrong.
    quiet = args.cmd not in ("serve", "worker")
    logs.configure(os.environ.get("LOG_LEVEL", "WARNING" if quiet else "INFO"), os.environ.get("SYNCBOT_LOG_FORMAT"))
    redaction.install_log_filter()
    try:
        return {"console": _console, "diagnose": _diagnose, "maintenance": _maintenance, "doctor": _doctor,
                "serve": _serve, "audit": _audit, "worker": _worker}[args.cmd](args)
    except CatalogError as exc:
        print(f"syncbot: catalog error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except SettingsError as exc:
        print(f"syncbot: malformed setting: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _settings():
    """The process's settings, validated once at start-up; from here on every log record and every
    error shown passes the redaction step that knows their secrets."""
    from bot import redaction
    from bot.settings import load_settings

    settings = load_settings()
    redaction.configure(settings)
    return settings


def _scenarios() -> list[str]:
    from .sandbox.scenarios import SCENARIOS

    return list(SCENARIOS)


def _console(args: argparse.Namespace) -> int:
    from .console import main as console_main

    return console_main(args.scenario, args.user)


def _diagnose(args: argparse.Namespace) -> int:
    from bot import text_output

    bot, close = _bot_for(args.sandbox)
    try:
        if args.table:
            spec = bot.find(args.table)
            if spec is None:
                close_matches = bot.suggestions(args.table)
                hint = f" Did you mean {', '.join(close_matches)}?" if close_matches else ""
                print(f"syncbot: no table {args.table!r} in the catalog.{hint}", file=sys.stderr)
                return EXIT_USAGE
            diags = [bot.diagnose(spec)]
        else:
            diags = bot.diagnose_all()
        if args.json:
            print(redact(text_output.to_json(diags)))
        elif args.table:
            print(redact(text_output.text(diags[0])))
        else:
            print(redact(text_output.fleet_text(diags)))
        sections = {d.verdict.section for d in diags}
        if sections == {Section.HEALTHY}:
            return EXIT_HEALTHY
        if sections <= {Section.HEALTHY, Section.UNKNOWN}:
            return EXIT_UNKNOWN
        return EXIT_UNHEALTHY
    finally:
        close()


def _maintenance(args: argparse.Namespace) -> int:
    from bot.maintenance import maintenance_report
    from bot.maintenance.report import text, to_json

    bot, close = _bot_for(args.sandbox)
    try:
        report = maintenance_report(bot)
    finally:
        close()
    print(redact(to_json(report) if args.json else text(report)))
    statuses = {f.status for f in report.findings}
    if statuses <= {Status.OK}:
        return EXIT_HEALTHY
    if statuses <= {Status.OK, Status.UNKNOWN}:
        return EXIT_UNKNOWN
    return EXIT_UNHEALTHY


def _doctor(args: argparse.Namespace) -> int:
    from bot.doctor import examine
    from bot.services import build_doctor_backends
    from handlers.app import web_client

    from .slack_check import find_manifest, slack_lines

    try:
        settings = _settings()
    except SettingsError as exc:
        print(f"syncbot doctor: malformed setting: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    client = web_client(token, settings.slack_api_url) if token else None
    manifest = find_manifest(args.manifest)
    report = examine(settings, build_doctor_backends(settings), lambda: slack_lines(client, manifest),
                     read_only=args.read_only)
    print(report.to_json() if args.json else report.text())
    return EXIT_HEALTHY if report.ok else EXIT_UNHEALTHY


def _bot_for(scenario: str | None):
    if scenario:
        import fakeredis

        from bot.services import assemble

        from .sandbox.pipeline import Sandbox

        sandbox = Sandbox(scenario)
        return assemble(sandbox.catalog, sandbox.gateways, fakeredis.FakeRedis()), sandbox.close
    from bot.services import build_bot

    return build_bot(_settings()), lambda: None


def _serve(args: argparse.Namespace) -> int:
    from handlers.app import web_client

    from . import server
    from .wiring import web

    settings = _settings()
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        print("syncbot: set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)", file=sys.stderr)
        return EXIT_USAGE
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    wiring = web(settings, web_client(token, settings.slack_api_url))
    shutdown = server.Shutdown(settings.drain_seconds, settings.shutdown_seconds)
    if settings.slack_app_token is not None:
        server.serve_socket_mode(wiring.app, settings.slack_app_token.get_secret_value(), wiring.bot, args.host,
                                 args.port, wiring.acks.executor, shutdown)
    else:
        server.serve_http(wiring.app, wiring.bot, args.host, args.port, pool=wiring.acks.executor, shutdown=shutdown)
    return 0


def _audit(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from bot.remediation import audit
    from bot.services import build_redis

    entries = audit.read(build_redis(_settings()), args.table, args.limit)
    if not entries:
        print("no audit entries" + (f" for {args.table}" if args.table else ""))
    for e in entries:
        when = datetime.fromtimestamp(e.at, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        print(f"{when}Z  {e.table:<16} {e.action:<13} {e.event:<10} {e.user:<24} {e.request}  {e.detail}".rstrip())
    return 0


def _worker(args: argparse.Namespace) -> int:
    from bot.remediation.fixes import QUEUES

    from .wiring import run_worker, worker_from

    settings = _settings()
    parts = worker_from(settings)
    names = [name.strip() for name in (args.queues or ",".join(QUEUES)).split(",") if name.strip()]
    unknown = [name for name in names if name not in parts.queues]
    if unknown:
        print(f"syncbot: unknown queue(s) {', '.join(unknown)}; known: {', '.join(QUEUES)}", file=sys.stderr)
        return EXIT_USAGE
    run_worker(parts, names, settings, args.metrics_port, args.metrics_host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
