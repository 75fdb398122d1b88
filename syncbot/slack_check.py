"""The doctor's Slack lines: the bot token works (auth.test) and carries every bot scope manifest.yml
asks for. Slack reports a token's scopes in the `x-oauth-scopes` header of its Web API responses
(Bolt's own authorization reads them the same way)."""
from __future__ import annotations

from pathlib import Path

import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.doctor import Line
from bot.models import Status

_REISSUE = ("copy the Bot User OAuth Token (xoxb-…) from the app's OAuth & Permissions page into SLACK_BOT_TOKEN; "
            "reinstall the app if it was revoked")
_SCOPES_HEADER = "x-oauth-scopes"


def manifest_scopes(path: Path) -> list[str]:
    """The bot scopes the app manifest requests."""
    data = yaml.safe_load(path.read_text()) or {}
    return list(((data.get("oauth_config") or {}).get("scopes") or {}).get("bot") or [])


def find_manifest(given: str | None) -> Path | None:
    """--manifest, else manifest.yml here, else the one beside the installed source tree."""
    candidates = [Path(given)] if given else [Path("manifest.yml"), Path(__file__).resolve().parents[1] / "manifest.yml"]
    return next((p for p in candidates if p.is_file()), None)


def slack_lines(client: WebClient | None, manifest: Path | None) -> list[Line]:
    if client is None or not client.token:
        return [Line("Slack", "token", Status.FAILING, "SLACK_BOT_TOKEN is not set", _REISSUE)]
    try:
        response = client.auth_test()
    except SlackApiError as exc:
        error = exc.response.get("error", "error")
        return [Line("Slack", "token", Status.FAILING, f"Slack refused it ({error})", _REISSUE)]
    except OSError as exc:  # connection refused, DNS, TLS: urllib's errors are OSErrors
        return [Line("Slack", "token", Status.FAILING, f"cannot reach Slack at {client.base_url} ({type(exc).__name__})",
                     "check outbound HTTPS to Slack (and SLACK_API_URL if set)")]
    who = f"bot {response.get('user_id', '?')} in team {response.get('team_id', '?')}"
    return [Line("Slack", "token", Status.OK, f"works: {who}"), _scopes_line(response.headers, manifest)]


def _scopes_line(headers: dict, manifest: Path | None) -> Line:
    if manifest is None:
        return Line("Slack", "scopes", Status.WARNING, "manifest.yml not found: scopes not compared",
                    "run from the directory holding manifest.yml, or pass --manifest PATH")
    wanted = manifest_scopes(manifest)
    header = next((v for k, v in headers.items() if k.lower() == _SCOPES_HEADER), None)
    if header is None:
        return Line("Slack", "scopes", Status.WARNING, "Slack did not report the token's scopes",
                    f"check by hand that the app has: {', '.join(wanted)}")
    granted = {s.strip() for s in (header[0] if isinstance(header, list) else header).split(",") if s.strip()}
    missing = [s for s in wanted if s not in granted]
    if missing:
        return Line("Slack", "scopes", Status.FAILING, f"the token lacks {', '.join(missing)} (manifest.yml asks for them)",
                    "add them under OAuth & Permissions → Bot Token Scopes (or update the app from manifest.yml), "
                    "then reinstall the app to the workspace")
    return Line("Slack", "scopes", Status.OK, f"has every scope manifest.yml asks for ({', '.join(wanted)})")
