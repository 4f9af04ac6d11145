"""A run's progress at a glance: a bar, the rate tasks get done at, and when they will be."""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Mapping
from typing import Any

import attrs

#: The rate is measured over this many of the last seconds: long enough to smooth out tasks
#: finishing in bursts, short enough to follow a run that speeds up or slows down.
RATE_WINDOW_SECONDS = 60.0
BAR_WIDTH = 30


@attrs.frozen
class Progress:
    """How far a run has got, from its information (`GET /api/runs/{uuid}`)."""

    num_tasks: int
    percent_done: float
    num_done: int
    num_computing: int
    num_failed: int

    @classmethod
    def from_info(cls, info: Mapping[str, Any]) -> Progress:
        return cls(
            num_tasks=int(info["numTasks"]),
            percent_done=float(info["percentDone"]),
            num_done=int(info["numDone"]),
            num_computing=int(info["numComputing"]),
            num_failed=int(info.get("numFailed", 0)),
        )

    @property
    def finished(self) -> bool:
        """Every task is done or has failed: nothing more will happen by itself."""
        return self.num_done + self.num_failed >= self.num_tasks

    @property
    def tasks_worth_done(self) -> float:
        """Tasks done, counting each task's partial progress: it moves between completions."""
        return self.num_tasks * self.percent_done / 100

    @property
    def tasks_worth_left(self) -> float:
        return self.num_tasks - self.tasks_worth_done


@attrs.define
class RateWindow:
    """Tasks done per second over the last `seconds` seconds of samples."""

    seconds: float = RATE_WINDOW_SECONDS
    _samples: collections.deque[tuple[float, float]] = attrs.field(
        factory=collections.deque, init=False
    )

    def add(self, when: float, tasks_worth_done: float) -> None:
        if self._samples and tasks_worth_done < self._samples[-1][1]:
            self._samples.clear()  # the run was restarted: earlier samples say nothing now
        self._samples.append((when, tasks_worth_done))
        # Keeps one sample at or before the window's start, so the window is always covered.
        while len(self._samples) > 2 and self._samples[1][0] <= when - self.seconds:
            self._samples.popleft()

    def rate(self) -> float | None:
        if len(self._samples) < 2:
            return None
        (first_time, first_done), (last_time, last_done) = self._samples[0], self._samples[-1]
        if last_time <= first_time:
            return None
        return (last_done - first_done) / (last_time - first_time)


def progress_line(progress: Progress, rate: float | None) -> str:
    """`[#####-----]  50.0%  5/10 done  2 computing  4.0 tasks/s  ETA 0:00:02`."""
    filled = round(BAR_WIDTH * progress.percent_done / 100)
    parts = [
        f"[{'#' * filled}{'-' * (BAR_WIDTH - filled)}] {progress.percent_done:5.1f}%",
        f"{progress.num_done}/{progress.num_tasks} done",
        f"{progress.num_computing} computing",
    ]
    if progress.num_failed:
        parts.append(f"{progress.num_failed} failed")
    if not progress.finished:
        parts.append(_rate(rate))
        parts.append(f"ETA {_eta(progress, rate)}")
    return "  ".join(parts)


def _rate(rate: float | None) -> str:
    if rate is None or rate <= 0:
        return "-- tasks/s"
    for unit, seconds in (("s", 1), ("min", 60), ("h", 3600)):
        if rate * seconds >= 1:
            return f"{rate * seconds:.1f} tasks/{unit}"
    return f"{rate * 86400:.1f} tasks/day"


def _eta(progress: Progress, rate: float | None) -> str:
    if rate is None or rate <= 0:
        return "--"
    return str(dt.timedelta(seconds=round(progress.tasks_worth_left / rate)))
