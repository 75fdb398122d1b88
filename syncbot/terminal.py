"""Renders Block Kit readably in a terminal, numbering buttons so they can be pressed."""
from __future__ import annotations

import re
from typing import Any

_EMOJI = {":large_green_circle:": "🟢", ":large_yellow_circle:": "🟡", ":red_circle:": "🔴", ":white_circle:": "⚪",
          ":hourglass_flowing_sand:": "⏳", ":white_check_mark:": "✅", ":gear:": "⚙️", ":no_entry_sign:": "🚫",
          ":alarm_clock:": "⏰", ":x:": "❌", ":information_source:": "ℹ️", ":warning:": "⚠️"}
_ENTITIES = {"&lt;": "<", "&gt;": ">", "&amp;": "&"}


def mrkdwn(text: str) -> str:
    for code, glyph in _EMOJI.items():
        text = text.replace(code, glyph)
    text = re.sub(r"\n?```(.*?)```", lambda m: "\n" + "\n".join("      " + line for line in m.group(1).splitlines()),
                  text, flags=re.S)
    text = re.sub(r"(?<!\w)[*`](.+?)[*`](?!\w)", r"\1", text)
    text = re.sub(r"<(https?://[^|>]+)\|([^>]+)>", r"\2 (\1)", text)  # a link: its label, then where it goes
    for entity, char in _ENTITIES.items():
        text = text.replace(entity, char)
    return text


def render(blocks: list[dict[str, Any]], buttons: list[dict[str, Any]]) -> list[str]:
    """Lines for one message; each button found is appended to `buttons` and shown by its number."""
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"== {block['text']['text']} ==")
        elif kind == "section":
            lines += ["  " + line for line in mrkdwn(block["text"]["text"]).splitlines()]
            if (accessory := block.get("accessory") or {}).get("type") == "button":  # e.g. End snooze
                buttons.append(accessory)
                lines.append(f"  Buttons: [{len(buttons)}] {accessory['text']['text']}   (type `press N`)")
        elif kind == "divider":
            lines.append("  " + "-" * 60)
        elif kind == "context":
            lines.append("  (" + " ".join(mrkdwn(e.get("text", "")) for e in block["elements"]) + ")")
        elif kind == "actions":
            labels = []
            for element in block["elements"]:
                # An overflow menu's options are pressed like buttons (each carries its menu's action id).
                menu = element.get("type") in ("overflow", "static_select")
                options = ([{**option, "action_id": element["action_id"], "selected": True,
                             "menu_type": element["type"]} for option in element["options"]] if menu else [element])
                for option in options:
                    buttons.append(option)
                    danger = " !" if option.get("style") == "danger" else ""
                    more = {"overflow": " (⋯ menu)", "static_select": " (menu)"}.get(option.get("menu_type", ""), "")
                    labels.append(f"[{len(buttons)}] {option['text']['text']}{danger}{more}")
            lines.append("  Buttons: " + "   ".join(labels) + "   (type `press N`)")
    return lines
