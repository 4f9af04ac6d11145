"""Short forms of long text, for tables people read at a glance: the CLI's and the pages'."""

from __future__ import annotations

import json
import math
from typing import Any

_UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def last_line(text: str | None, width: int = 72) -> str | None:
    """The last line with something on it (a command's error output ends with its reason),
    cut to `width` characters; None when there is none."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1]
    return line if len(line) <= width else line[: width - 1] + "…"


def percent(value: float) -> str:
    """A percentage to a tenth, rounded down: an unfinished run never reads 100 %, and one
    that has begun never reads 0 %."""
    if 0 < value < 0.1:
        return "< 0.1 %"
    return f"{math.floor(value * 10) / 10:.1f} %"


def duration(seconds: float) -> str:
    """A span in its two largest units: '3 h 20 min', '45 s', '2 d 4 h'."""
    remaining = max(round(seconds), 0)
    if remaining == 0:
        return "under a second" if seconds > 0 else "0 s"
    parts: list[str] = []
    for unit, size in _UNITS:
        amount, remaining = divmod(remaining, size)
        if amount or parts:
            parts.append(f"{amount} {unit}")
        if len(parts) == 2:
            break
    if len(parts) == 2 and parts[1].startswith("0 "):
        parts.pop()
    return " ".join(parts)


def shown_input(value: Any, width: int = 60) -> str:
    """A task's input as a table shows it: a string as it is, anything else as JSON, cut to
    `width` characters."""
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= width else text[: width - 1] + "…"
