"""The console sandbox as an on-call engineer sees it (the real Bolt app and handlers in-process,
syncbot.console): what a scripted session prints, the buttons it draws, and the one check every
scenario table runs (the right heading, cause and buttons, and no wrong button)."""
import io
import re

from syncbot.console import Console


def console_says(scenario, *lines):
    out = io.StringIO()
    console = Console(scenario, out=out)
    try:
        console.run(lines, echo=True)
    finally:
        console.close()
    return out.getvalue()


def buttons(text):
    """The labels of the buttons drawn ("[2] Re-sync table… (⋯ menu)" is the Re-sync table button)."""
    found = re.findall(r"\[\d+\] ([^\[\n]+?)\s*(?=\[\d+\]|$|\n)", text)
    return [label.split("…")[0].split(" (")[0].strip() for label in found]


def check_scenario(scenario, heading, cause, wanted, unwanted):
    said = console_says(scenario, "/sync-status orders")
    assert f"== orders: {heading} ==" in said
    assert cause in said
    shown = set(buttons(said))
    assert wanted <= shown, shown
    assert not (unwanted & shown), shown
