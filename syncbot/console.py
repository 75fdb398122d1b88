"""`syncbot console`: the real Bolt app and handlers, in-process, against the sandbox pipeline.
Type what you would type in Slack; messages are drawn in the terminal and buttons can be pressed."""
from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import Any, Iterable, TextIO

import fakeredis

from bot.services import assemble
from handlers import alert_posts
from handlers.app import web_client

from . import terminal
from .sandbox.slack import (
    SandboxSlack, block_actions_body, bolt_request, event_callback_body, event_request, home_action_body,
    slash_command_body, submit_view,
)
from .sandbox.pipeline import Sandbox
from .sandbox.scenarios import SCENARIOS
from .wiring import wire

CHANNEL = "C0INCIDNT"
USAGE = """Type as in Slack:
  /sync-status orders        diagnose one table (try also: /sync-status, /sync-status help)
  press N [reason…]          press button N of the messages shown (a fix that needs two people asks why:
                             give the reason after N, or answer the form with `reason …`)
  reason <text>              submit the open form with <text>
  snooze <table> 1h|4h|tomorrow   choose that in the Snooze menu of the table's latest alert annotation
  home                       open your App Home (requests to approve, yours, running fixes, broken tables, snoozes)
  as U0BOB0002               act as another Slack user (approvers: {approvers})
  alert <text>               an integration posts <text> in the alert channel ({alerts})
  alert @file.json           replay a recorded message event there (e.g. tests/payloads/grafana_mixed.json)
  scenarios                  list the sandbox scenarios
  quit                       leave"""


class Console:
    def __init__(self, scenario: str = "healthy", out: TextIO = sys.stdout, user: str = "U0ALICE01"):
        self.out, self.user = out, user
        self.sandbox = Sandbox(scenario)
        self.slack = SandboxSlack()
        self.redis = fakeredis.FakeRedis()
        self.bot = assemble(self.sandbox.catalog, self.sandbox.gateways, self.redis)
        self.secret = secrets.token_hex(16)
        # process_before_response: the listener finishes before dispatch returns, so output is in order;
        # jobs (the re-sync) run in-process as soon as they are queued.
        self.wiring = wire(self.bot, client=web_client("xoxb-sandbox", self.slack.api_url), signing_secret=self.secret,
                           inline=True,
                           process_before_response=True, poll_s=0.2, sleep=time.sleep)
        self.app = self.wiring.app
        self.buttons: list[dict[str, Any]] = []
        self._button_message: dict[str, str] = {}  # button value -> ts of the message carrying it
        self._where: dict[str, tuple[str, str | None]] = {}  # message ts -> (channel, thread it is in)
        self._seen = 0
        self._drawn: dict[str, list[str]] = {}  # message ts -> lines last drawn
        self._form: dict[str, Any] | None = None  # the form (views.open) waiting for an answer
        self._home_values: set[str] = set()  # values of the buttons drawn on the App Home

    def close(self) -> None:
        self.slack.close()
        self.sandbox.close()

    def run(self, lines: Iterable[str], echo: bool) -> None:
        for raw in lines:
            line = raw.strip()
            if not line:
                continue
            if echo:
                self.print(f"\n{self.user}> {line}")
            if line in ("quit", "exit"):
                return
            self.handle(line)

    def handle(self, line: str) -> None:
        word, _, rest = line.partition(" ")
        if word.startswith("/"):
            self.command(word, rest)
        elif word in ("press", "click") and rest.split()[:1] and rest.split()[0].isdigit():
            number, _, reason = rest.strip().partition(" ")
            self.press(int(number), reason.strip())
        elif word == "reason":  # an empty reason too: the form refuses it on its field
            self.answer_form(rest.strip())
        elif word == "snooze" and len(rest.split()) == 2:
            self.snooze(*rest.split())
        elif word == "home":
            self.home()
        elif word == "as" and rest.strip():
            self.user = rest.strip()
            self.print(f"(now acting as {self.user})")
        elif word == "alert" and rest.strip():
            self.alert(rest.strip())
        elif word == "scenarios":
            for name, s in SCENARIOS.items():
                self.print(f"  {name:<16} {s.description}")
        else:
            self.print(self.usage())

    def command(self, command: str, text: str) -> None:
        body = slash_command_body(text, self.user, CHANNEL, self.slack.response_url(), command=command)
        self.dispatch(body)

    def alert(self, text: str) -> None:
        """An alerting integration's post: `alert <text>` as a bot message (as AWS Chatbot and most tools
        post), `alert @file.json` a recorded message event replayed into the alert channel."""
        channel = self.bot.catalog.alerts.channels[0]
        ts = f"{time.time():.6f}"
        if text.startswith("@"):
            event = self._recorded(text[1:].strip(), channel, ts)
            if event is None:
                return
        else:
            event = {"type": "message", "subtype": "bot_message", "bot_id": "B0ALERTER", "username": "CloudWatch",
                     "text": text, "channel": channel, "channel_type": "channel", "ts": ts, "event_ts": ts}
            self.print(f"--- CloudWatch posted in #{channel} ---\n  {text}")
        response = self.app.dispatch(event_request(event_callback_body(event), self.secret))
        if response.status != 200:
            self.print(f"(Slack would see HTTP {response.status})")
        self.show_new()

    def _recorded(self, path: str, channel: str, ts: str) -> dict[str, Any] | None:
        """The message event in `path` as if posted now in the alert channel: a thread reply stays a reply,
        and the corpus's own notes ("_source", "_expect") are left out."""
        try:
            recorded = json.loads(Path(path).read_text())
        except (OSError, ValueError) as exc:
            self.print(f"(cannot replay {path}: {getattr(exc, 'strerror', None) or exc})")
            return None
        if not isinstance(recorded, dict) or recorded.get("type") != "message":
            self.print(f"(cannot replay {path}: not a Slack message event)")
            return None
        event = {k: v for k, v in recorded.items() if not k.startswith("_")}
        if event.get("thread_ts") == event.get("ts"):
            event["thread_ts"] = ts  # the root of its own thread stays the root
        event.update(channel=channel, ts=ts, event_ts=ts)
        post = alert_posts.post_of(event)
        first = next((line for p in (post.parts if post else ()) for line in (p.headline or p.text).splitlines()
                      if line.strip()), "")
        who = event.get("username") or "an integration"
        self.print(f"--- {who} posted in #{channel} (replayed from {path}) ---\n  {first}")
        return event

    def home(self) -> None:
        event = {"type": "app_home_opened", "user": self.user, "channel": "D0CONSOLE", "tab": "home",
                 "event_ts": f"{time.time():.6f}"}
        self.app.dispatch(event_request(event_callback_body(event), self.secret))
        self.show_new()

    def snooze(self, table: str, length: str) -> None:
        value = f"{length}|{table}"
        for number in range(len(self.buttons), 0, -1):  # the latest annotation's menu
            if self.buttons[number - 1].get("value") == value:
                self.press(number)
                return
        self.print(f"(no Snooze menu for {table} with {length} shown: an alert annotation of it carries one)")

    def answer_form(self, text: str) -> None:
        if self._form is None:
            self.print("(no form is open)")
            return
        view, self._form = self._form, None
        first = next(b for b in view["blocks"] if b["type"] == "input")
        response = submit_view(self.app, self.secret, view, {first["block_id"]: {first["element"]["action_id"]: text}},
                               self.user)
        if response.body and response.body.startswith("{"):  # refused on the field: the form stays open
            errors = json.loads(response.body).get("errors", {})
            self.print("(the form says) " + "; ".join(errors.values()))
            self._form = view
        self.show_new()

    def press(self, number: int, reason: str = "") -> None:
        if not 1 <= number <= len(self.buttons):
            self.print(f"(no button {number}; {len(self.buttons)} shown)")
            return
        button = self.buttons[number - 1]
        if "confirm" in button:
            self.print(f"(Slack's confirm dialog: {terminal.mrkdwn(button['confirm']['text']['text'])} → confirmed)")
        if button.get("value", "") in self._home_values:  # the App Home: no channel, no response_url
            action = {"action_id": button["action_id"], "block_id": "home", "value": button.get("value", ""),
                      "text": button["text"]}
            self.app.dispatch(bolt_request(home_action_body(action, self.user), self.secret))
            self.show_new()
            return
        if button.get("selected"):
            action = {"type": button.get("menu_type", "overflow"), "action_id": button["action_id"], "block_id": "syncbot.fixes",
                      "selected_option": {"text": button["text"], "value": button["value"]}}
        else:
            action = {"action_id": button["action_id"], "block_id": "syncbot.fixes", "value": button.get("value", ""),
                      "text": button["text"]}
        ts = self._button_message.get(button.get("value", ""), "")
        channel, thread = self._where.get(ts, (CHANNEL, None))
        self.dispatch(block_actions_body(action, self.user, channel, ts, self.slack.response_url(), thread_ts=thread))
        if reason and self._form is not None:
            self.answer_form(reason)

    def dispatch(self, body: str) -> None:
        response = self.app.dispatch(bolt_request(body, self.secret))
        if response.status != 200:
            self.print(f"(Slack would show an error: HTTP {response.status})")
        elif response.body:
            ack = json.loads(response.body) if response.body.startswith("{") else {"text": response.body}
            if ack.get("text"):
                self.print("(only visible to you) " + terminal.mrkdwn(ack["text"]))
        self.show_new()

    def show_new(self) -> None:
        for call in self.slack.calls[self._seen:]:
            p = call.params
            if call.method in ("chat.postMessage", "chat.update"):
                verb = "posted in" if call.method == "chat.postMessage" else "updated in"
                thread = " (in thread)" if p.get("thread_ts") else ""
                self.print(f"--- syncbot {verb} #{p.get('channel')}{thread} ---")
                if call.method == "chat.postMessage":
                    self._where[call.ts] = (p.get("channel", CHANNEL), p.get("thread_ts"))
                self.show_blocks(p, call.ts if call.method == "chat.postMessage" else p.get("ts", ""),
                                 update=call.method == "chat.update")
            elif call.method == "views.publish" and p.get("user_id") == self.user:
                view = p["view"] if isinstance(p["view"], dict) else json.loads(p["view"])
                self.print(f"--- your App Home ({self.user}) ---")
                before = len(self.buttons)
                self.print("\n".join(terminal.render(view["blocks"], self.buttons)))
                self._home_values |= {b.get("value", "") for b in self.buttons[before:]}
            elif call.method == "views.open":
                view = p["view"] if isinstance(p["view"], dict) else json.loads(p["view"])
                self._form = view
                self.print(f"--- syncbot opened a form: {view['title']['text']} ---")
                self.print("\n".join(terminal.render([b for b in view["blocks"] if b["type"] != "input"], [])))
                for block in view["blocks"]:
                    if block["type"] == "input":
                        self.print(f"  [{block['label']['text']}] answer with: reason <text>")
            elif call.method == "files.completeUploadExternal":
                for shared in json.loads(p.get("files", "[]")):
                    size = len(self.slack.uploads.get(shared["id"], b""))
                    self.print(f"--- syncbot uploaded a picture in #{p.get('channel_id')} (in thread) ---\n"
                               f"  [image: {shared.get('title', '')}, {size:,} bytes PNG]")
            elif call.method in ("response_url", "chat.postEphemeral"):
                visible = "everyone" if p.get("response_type") == "in_channel" else "only visible to you"
                self.print(f"({visible}) " + terminal.mrkdwn(p.get("text", "")))
                if p.get("blocks"):
                    self.show_blocks(p, "")
        self._seen = len(self.slack.calls)

    def show_blocks(self, params: dict[str, Any], ts: str, update: bool = False) -> None:
        before = len(self.buttons)
        blocks = params.get("blocks") or []
        lines = terminal.render(blocks, self.buttons) if blocks else [terminal.mrkdwn(params.get("text", ""))]
        seen = set(self._drawn.get(ts, [])) if update else set()
        for line in lines:
            if line not in seen:  # an updated message shows only what changed
                self.print(line)
        self._drawn[ts] = lines
        for button in self.buttons[before:]:
            self._button_message[button.get("value", "")] = ts

    def usage(self) -> str:
        return USAGE.format(approvers=", ".join(self.bot.catalog.access.approvers),
                            alerts=", ".join(f"#{c}" for c in self.bot.catalog.alerts.channels))

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def main(scenario: str, user: str) -> int:
    console = Console(scenario, user=user)
    interactive = sys.stdin.isatty()
    try:
        console.print(f"syncbot console: sandbox scenario '{scenario}' — {SCENARIOS[scenario].description}")
        if interactive:
            console.print(console.usage())
            console.run(_prompt_lines(console), echo=False)
        else:
            console.run(sys.stdin, echo=True)
    finally:
        console.close()
    return 0


def _prompt_lines(console: Console) -> Iterable[str]:
    while True:
        try:
            yield input(f"{console.user}> ")
        except EOFError:
            return
