"""How numbers, paces and times read on the dashboard: short, and never more precise than true."""

from __future__ import annotations

import datetime as dt

from taskfarm.entrypoints.summaries import duration
from taskfarm.throughput import Estimate

__all__ = ["count", "duration", "moment", "pace", "time_left"]


def count(number: int) -> str:
    """A whole number with thousands separated: 1,234,567."""
    return f"{number:,}"


def pace(estimate: Estimate) -> str:
    """Tasks finished per second, minute or hour, whichever reads best."""
    per_second = estimate.tasks_per_second
    if per_second is None:
        return "measuring…"
    for unit, seconds in (("s", 1), ("min", 60), ("h", 3_600)):
        rate = per_second * seconds
        if rate >= 1:
            return _per(rate, unit)
    if per_second == 0:
        return "0 tasks/min"
    return _per(per_second * 86_400, "day")


def _per(rate: float, unit: str) -> str:
    number = _significant(rate)
    return f"{number} {'task' if number == '1' else 'tasks'}/{unit}"


def time_left(estimate: Estimate) -> str:
    """How long until the run is done at its pace."""
    if estimate.seconds_left == 0:
        return "finished"
    if estimate.measuring:
        return "measuring…"
    if estimate.seconds_left is None:
        return f"unknown: none finished in {duration(estimate.span.total_seconds())}"
    return duration(estimate.seconds_left)


def moment(when: dt.datetime) -> str:
    """A time in UTC, to the second."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _significant(rate: float) -> str:
    """Three significant digits at most, without a trailing '.0'."""
    return f"{round(rate):,}" if rate >= 100 else f"{rate:.3g}"
