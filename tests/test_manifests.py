"""The two app manifests (HTTP and Socket Mode) describe the same app; only the transport differs."""
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load(name):
    return yaml.safe_load((ROOT / name).read_text())


def urls(node):
    if isinstance(node, dict):
        return [v for k, v in node.items() if k in ("url", "request_url")] + [u for v in node.values() for u in urls(v)]
    if isinstance(node, list):
        return [u for v in node for u in urls(v)]
    return []


def test_socket_mode_manifest_is_the_same_app_without_request_urls():
    http, socket = load("manifest.yml"), load("manifest.socket-mode.yml")
    assert http["settings"]["socket_mode_enabled"] is False and socket["settings"]["socket_mode_enabled"] is True
    assert urls(socket) == [] and urls(http)  # Socket Mode: Slack opens no connection to us
    assert socket["oauth_config"] == http["oauth_config"]
    assert socket["settings"]["event_subscriptions"]["bot_events"] == http["settings"]["event_subscriptions"]["bot_events"]
    assert [c["command"] for c in socket["features"]["slash_commands"]] == \
        [c["command"] for c in http["features"]["slash_commands"]]


def test_chat_write_public_is_not_requested():
    """Where the bot is not a member it answers through response_url (tests/test_not_in_channel.py)."""
    for name in ("manifest.yml", "manifest.socket-mode.yml"):
        assert "chat:write.public" not in load(name)["oauth_config"]["scopes"]["bot"]
