from __future__ import annotations

import datetime as dt
from typing import Protocol


class Clock(Protocol):
    """Tells the time, so that tests can control it."""

    def now(self) -> dt.datetime:
        """The current time, timezone-aware (UTC)."""
        ...
