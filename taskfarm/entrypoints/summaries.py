"""Short forms of long text, for tables people read at a glance: the CLI's and the pages'."""

from __future__ import annotations


def last_line(text: str | None, width: int = 72) -> str | None:
    """The last line with something on it (a command's error output ends with its reason),
    cut to `width` characters; None when there is none."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1]
    return line if len(line) <= width else line[: width - 1] + "…"
