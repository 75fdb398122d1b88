"""Numbers in the words an on-call engineer reads at a glance: ages, sizes, trends. One place, so a
diagnosis and a maintenance report say "3h05m" and "1 GiB" the same way."""
from __future__ import annotations

_BARS = "▁▂▃▄▅▆▇█"


def duration(seconds: float | None) -> str:
    """45s, 12m, 3h05m, 4d: precise where it matters (minutes of lag), coarse where it does not."""
    if seconds is None:
        return "?"
    seconds = max(0, int(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    if seconds < 172800:
        return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"
    return f"{seconds // 86400}d"


def byte_size(n: float | None) -> str:
    """Bytes in binary units: 512 B, 3 MiB, 2 GiB."""
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.0f} PiB"


def sparkline(values: list[float], width: int = 24) -> str:
    """The last `width` values as bars, scaled to their own range."""
    shown = values[-width:]
    if not shown:
        return ""
    low, high = min(shown), max(shown)
    span = (high - low) or 1.0
    return "".join(_BARS[int((v - low) / span * (len(_BARS) - 1))] for v in shown)
