"""syncbot's command line: console (sandbox), diagnose, serve."""
from __future__ import annotations

import argparse
import logging
import os
import sys

from bot.catalog import CatalogError
from bot.models import Section

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

    serve = sub.add_parser("serve", help="run the Slack app (HTTP, or Socket Mode when SLACK_APP_TOKEN is set)")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=int(os.environ.get("PORT", "3000")))

    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.cmd != "serve":
        logging.getLogger().setLevel(os.environ.get("LOG_LEVEL", "WARNING"))
    try:
        return {"console": _console, "diagnose": _diagnose, "serve": _serve}[args.cmd](args)
    except CatalogError as exc:
        print(f"syncbot: catalog error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _scenarios() -> list[str]:
    from .sandbox.scenarios import SCENARIOS

    return list(SCENARIOS)


def _console(args: argparse.Namespace) -> int:
    from .console import main as console_main

    return console_main(args.scenario, args.user)


def _diagnose(args: argparse.Namespace) -> int:
    from bot import report

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
            print(report.to_json(diags))
        elif args.table:
            print(report.text(diags[0]))
        else:
            print(report.fleet_text(diags))
        sections = {d.verdict.section for d in diags}
        if sections == {Section.HEALTHY}:
            return EXIT_HEALTHY
        if sections <= {Section.HEALTHY, Section.UNKNOWN}:
            return EXIT_UNKNOWN
        return EXIT_UNHEALTHY
    finally:
        close()


def _bot_for(scenario: str | None):
    if scenario:
        import fakeredis

        from bot.core import SyncBot
        from bot.diagnostics.runner import Diagnoser

        from .sandbox.pipeline import Sandbox

        sandbox = Sandbox(scenario)
        return SyncBot(sandbox.catalog, Diagnoser(sandbox.gateways), fakeredis.FakeRedis()), sandbox.close
    from bot.services import build_bot
    from bot.settings import Settings

    return build_bot(Settings()), lambda: None


def _serve(args: argparse.Namespace) -> int:
    from bot.services import build_bot
    from bot.settings import Settings
    from handlers.app import build_app, web_client

    from . import server

    settings = Settings()
    if settings.slack_signing_secret is None and settings.slack_app_token is None:
        print("syncbot: set SLACK_SIGNING_SECRET (HTTP mode) or SLACK_APP_TOKEN (Socket Mode)", file=sys.stderr)
        return EXIT_USAGE
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    bot = build_bot(settings)
    secret = settings.slack_signing_secret.get_secret_value() if settings.slack_signing_secret else ""
    app = build_app(bot, token=token, signing_secret=secret, client=web_client(token, settings.slack_api_url))
    if settings.slack_app_token is not None:
        server.serve_socket_mode(app, settings.slack_app_token.get_secret_value())
    else:
        server.serve_http(app, bot, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
