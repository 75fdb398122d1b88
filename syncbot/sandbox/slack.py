"""The sandbox's Slack: a local stand-in for Slack's Web API and response_url endpoints, plus correctly
signed requests into the Bolt app, which is how `syncbot console` talks to the real app without a
workspace. Not production (the import contracts keep bot/, handlers/ and the server from it); the
tests' stand-in (tests/fakeslack.py) adds what only tests set: refused tokens, granted scopes,
channels the bot is not in, usergroup members."""
from __future__ import annotations

import json
import threading
import time
import urllib.parse
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from slack_bolt.request import BoltRequest
from slack_sdk.signature import SignatureVerifier


@dataclass
class Posted:
    method: str  # chat.postMessage, chat.update, chat.postEphemeral, response_url
    params: dict[str, Any]
    ts: str = ""


@dataclass
class SandboxSlack:
    """Records every call; messages are kept by ts so chat.update changes them in place."""

    bot_user: str = "U0SYNCBOT"
    # What the token may do, reported in each answer's x-oauth-scopes header as Slack does.
    scopes: tuple[str, ...] = ("commands", "chat:write")

    def __post_init__(self) -> None:
        self.calls: list[Posted] = []
        self.uploads: dict[str, bytes] = {}  # file id -> bytes sent to its upload URL (files_upload_v2 step 2)
        self.messages: dict[str, Posted] = {}
        self.views: dict[str, dict[str, Any]] = {}  # view id -> the view as last opened or published
        self.homes: dict[str, dict[str, Any]] = {}  # user -> their published App Home
        self._lock = threading.Lock()
        self._seq = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def response_url(self) -> str:
        return self.url + "/response/" + str(self._next())

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self) -> int:
        with self._lock:
            self._seq += 1
            return self._seq

    def of(self, method: str) -> list[Posted]:
        return [c for c in self.calls if c.method == method]

    # What a stand-in for a particular workspace overrides (the tests' one does):
    def authorized(self, token: str) -> bool:
        """Every token is good here; one that is not is answered invalid_auth, as Slack does."""
        return True

    def refusal(self, method: str, params: dict[str, Any]) -> str | None:
        """The error Slack would answer this call with (e.g. not_in_channel), after recording it."""
        return None

    def members(self, usergroup: str) -> list[str]:
        return []

    def time_zone(self, user: str) -> str:
        """users.info's `tz` (an IANA name) for `user`."""
        return "UTC"

    def answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        ts = f"{int(time.time())}.{self._next():06d}"
        call = Posted(method, params, ts)
        with self._lock:
            self.calls.append(call)
        if (error := self.refusal(method, params)) is not None:
            return {"ok": False, "error": error}
        if method == "auth.test":
            return {"ok": True, "user_id": self.bot_user, "bot_id": "B0SYNCBOT", "team_id": "T0SANDBOX"}
        if method == "users.info":
            user = params.get("user", "")
            if not user:
                return {"ok": False, "error": "user_not_found"}
            return {"ok": True, "user": {"id": user, "tz": self.time_zone(user)}}
        if method == "usergroups.users.list":
            return {"ok": True, "users": self.members(params.get("usergroup", ""))}
        if method == "chat.postMessage":
            self.messages[ts] = call
            return {"ok": True, "channel": params.get("channel"), "ts": ts, "message": {"ts": ts}}
        if method == "chat.update":
            target = self.messages.get(params.get("ts", ""))
            if target is None:
                return {"ok": False, "error": "message_not_found"}
            target.params = {**target.params, **params}
            return {"ok": True, "channel": params.get("channel"), "ts": params.get("ts")}
        if method == "files.getUploadURLExternal":  # files_upload_v2, step 1 of 3
            file_id = f"F0SANDBOX{self._next():03d}"
            return {"ok": True, "file_id": file_id, "upload_url": f"{self.url}/upload/{file_id}"}
        if method == "files.completeUploadExternal":  # step 3: shares the uploaded file in the channel/thread
            files = json.loads(params.get("files", "[]"))
            missing = [f["id"] for f in files if f["id"] not in self.uploads]
            if missing:
                return {"ok": False, "error": "file_not_found"}
            return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}
        if method in ("views.open", "views.publish"):
            return self._view(method, params)
        if method == "conversations.open":  # a DM with the app: one per user, as Slack keeps it
            users = params.get("users", "")
            if not users or "," in users:
                return {"ok": False, "error": "users_list_not_supplied" if not users else "not_allowed"}
            return {"ok": True, "channel": {"id": "D" + users[1:]}}
        if method == "chat.postEphemeral":
            return {"ok": True, "message_ts": ts}
        if method == "chat.getPermalink":
            channel, message_ts = params.get("channel", ""), params.get("message_ts", "")
            if not channel or not message_ts:
                return {"ok": False, "error": "channel_not_found" if not channel else "message_not_found"}
            return {"ok": True, "channel": channel,
                    "permalink": f"https://sandbox.slack.com/archives/{channel}/p{message_ts.replace('.', '')}"}
        return {"ok": True}


    _VIEW_TITLE_MAX = 24  # https://api.slack.com/reference/surfaces/views: title, submit, close

    def _view(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        """views.open needs the click's trigger_id; views.publish a user_id and a home view. What Slack
        refuses (a modal title over 24 characters, more than 100 blocks) is refused here too."""
        view = params.get("view")
        view = json.loads(view) if isinstance(view, str) else view
        if not isinstance(view, dict):
            return {"ok": False, "error": "invalid_arguments"}
        if method == "views.open" and not params.get("trigger_id"):
            return {"ok": False, "error": "invalid_trigger_id"}
        if method == "views.publish" and (not params.get("user_id") or view.get("type") != "home"):
            return {"ok": False, "error": "invalid_arguments"}
        if view.get("type") == "modal" and not view.get("submit") and any(
                b.get("type") == "input" for b in view.get("blocks", [])):
            return {"ok": False, "error": "invalid_arguments"}  # "must define submit to use input block"
        titles = [view.get(k, {}).get("text", "") for k in ("title", "submit", "close") if view.get(k)]
        if any(len(t) > self._VIEW_TITLE_MAX for t in titles) or len(view.get("blocks", [])) > 100:
            return {"ok": False, "error": "invalid_arguments"}
        view_id = f"V0SANDBOX{self._next():03d}"
        self.views[view_id] = view
        if method == "views.publish":
            self.homes[params["user_id"]] = view
        return {"ok": True, "view": {**view, "id": view_id}}


def _handler(fake: SandboxSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.startswith("/upload/"):  # files_upload_v2 step 2: the file's bytes, as Slack takes them
                fake.uploads[self.path.rsplit("/", 1)[-1]] = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                data = b"OK"
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
            if self.headers.get("Content-Type", "").startswith("application/json"):
                params = json.loads(raw or "{}")
            else:
                params = {k: v[0] for k, v in urllib.parse.parse_qs(raw).items()}
                for key in ("blocks", "attachments"):
                    if isinstance(params.get(key), str):
                        params[key] = json.loads(params[key])
            token = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if self.path.startswith("/response/"):
                fake.answer("response_url", params)
                body = {"ok": True}
            elif not fake.authorized(token):
                body = {"ok": False, "error": "invalid_auth"}
            else:
                body = fake.answer(self.path.rsplit("/", 1)[-1], params)
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            if not self.path.startswith("/response/") and body.get("ok"):
                self.send_header("x-oauth-scopes", ",".join(fake.scopes))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - Web API methods slack_sdk calls with GET (chat.getPermalink)
            url = urllib.parse.urlsplit(self.path)
            params = {k: v[0] for k, v in urllib.parse.parse_qs(url.query).items()}
            data = json.dumps(fake.answer(url.path.rsplit("/", 1)[-1], params)).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


# -- signed requests into the app ----------------------------------------------------------------

def signed_headers(body: str, secret: str, timestamp: int | None = None, content_type: str =
                   "application/x-www-form-urlencoded") -> dict[str, str]:
    ts = str(int(timestamp if timestamp is not None else time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body)
    return {"content-type": content_type, "x-slack-request-timestamp": ts, "x-slack-signature": signature}


def slash_command_body(text: str, user: str, channel: str, response_url: str, command: str = "/sync-status") -> str:
    return urllib.parse.urlencode({
        "token": "legacy-unused", "team_id": "T0SANDBOX", "team_domain": "sandbox", "channel_id": channel,
        "channel_name": "incident", "user_id": user, "user_name": user.lower(), "command": command,
        "text": text, "api_app_id": "A0SYNCBOT", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": f"{int(time.time())}.1.abc",
    })


def block_actions_body(action: dict[str, Any], user: str, channel: str, message_ts: str, response_url: str,
                       thread_ts: str | None = None) -> str:
    payload = {
        "type": "block_actions", "team": {"id": "T0SANDBOX", "domain": "sandbox"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0SANDBOX"},
        "api_app_id": "A0SYNCBOT", "token": "legacy-unused", "trigger_id": f"{int(time.time())}.2.def",
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False,
                      **({"thread_ts": thread_ts} if thread_ts else {})},
        "channel": {"id": channel, "name": "incident"},
        "message": {"type": "message", "ts": message_ts, "user": "U0SYNCBOT"},
        "response_url": response_url,
        "actions": [{"type": "button", **action, "action_ts": f"{time.time():.6f}"}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def view_submission_body(view: dict[str, Any], values: dict[str, dict[str, Any]], user: str) -> str:
    """A form's submission as Slack posts it: the view as opened, with what was typed in its state."""
    state = {"values": {block: {action: {"type": "plain_text_input", "value": value}
                                for action, value in actions.items()} for block, actions in values.items()}}
    payload = {"type": "view_submission", "team": {"id": "T0SANDBOX", "domain": "sandbox"},
               "user": {"id": user, "username": user.lower(), "team_id": "T0SANDBOX"}, "api_app_id": "A0SYNCBOT",
               "token": "legacy-unused", "trigger_id": f"{int(time.time())}.3.ghi",
               "view": {**view, "id": view.get("id", "V0SANDBOX"), "state": state}}
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def submit_view(app: Any, secret: str, view: dict[str, Any], values: dict[str, dict[str, Any]], user: str) -> Any:
    """Submits a form opened with views.open (as recorded) into the app: Bolt's response."""
    return app.dispatch(bolt_request(view_submission_body(view, values, user), secret))


def fill_form(app: Any, slack: SandboxSlack, secret: str, user: str, text: str, since: int = 0) -> Any | None:
    """Types `text` into the first input of the newest form opened (views.open) after call `since` of
    them and submits it: Bolt's response, or None when no form was opened."""
    opened = slack.of("views.open")[since:]
    if not opened:
        return None
    view = opened[-1].params["view"]
    view = json.loads(view) if isinstance(view, str) else view
    first = next(b for b in view["blocks"] if b["type"] == "input")
    return submit_view(app, secret, view, {first["block_id"]: {first["element"]["action_id"]: text}}, user)


def home_action_body(action: dict[str, Any], user: str) -> str:
    """A click on the App Home: no channel, no response_url, the container is the view."""
    payload = {
        "type": "block_actions", "team": {"id": "T0SANDBOX", "domain": "sandbox"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0SANDBOX"},
        "api_app_id": "A0SYNCBOT", "token": "legacy-unused", "trigger_id": f"{int(time.time())}.4.jkl",
        "container": {"type": "view", "view_id": "V0HOME"}, "view": {"id": "V0HOME", "type": "home"},
        "actions": [{"type": "button", **action, "action_ts": f"{time.time():.6f}"}],
    }
    return urllib.parse.urlencode({"payload": json.dumps(payload)})


def bolt_request(body: str, secret: str, **kwargs: Any) -> BoltRequest:
    return BoltRequest(body=body, headers=signed_headers(body, secret, **kwargs))


def event_callback_body(event: dict[str, Any], event_id: str | None = None, team: str = "T0SANDBOX",
                        bot_user: str = "U0SYNCBOT") -> str:
    """An Events API delivery (JSON) wrapping one event, as Slack posts it to the request URL."""
    return json.dumps({
        "token": "legacy-unused", "team_id": team, "api_app_id": "A0SYNCBOT", "type": "event_callback",
        "event": event, "event_id": event_id or f"Ev{int(time.time() * 1000)}", "event_time": int(time.time()),
        "authorizations": [{"enterprise_id": None, "team_id": team, "user_id": bot_user, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
    })


def event_request(body: str, secret: str, retry_num: int | None = None, **kwargs: Any) -> BoltRequest:
    """A signed Events API request; `retry_num` adds the headers Slack sends when it retries a delivery."""
    headers = signed_headers(body, secret, content_type="application/json", **kwargs)
    if retry_num is not None:
        headers |= {"x-slack-retry-num": str(retry_num), "x-slack-retry-reason": "http_timeout"}
    return BoltRequest(body=body, headers=headers)
