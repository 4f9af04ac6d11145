"""How far ahead a worker claims. Tasks that take little time are claimed a few at a time
before they are needed, so that the next command starts as soon as one exits and one request
serves several tasks; long ones are not claimed ahead, so that no worker keeps tasks waiting
that another could start."""

from __future__ import annotations

#: Tasks shorter than this, by the mean of the last few, are claimed ahead.
SHORT_TASK_SECONDS = 2.0
#: How much each task that finishes moves that mean.
WEIGHT = 0.2
#: Tasks claimed ahead, per slot, of short tasks.
AHEAD_PER_SLOT = 4


class Pace:
    def __init__(self, slots: int) -> None:
        self._slots = slots
        self._mean: float | None = None

    def finished(self, seconds: float) -> None:
        """A command ran for `seconds`."""
        self._mean = seconds if self._mean is None else self._mean + WEIGHT * (seconds - self._mean)

    def ahead(self) -> int:
        """How many tasks to keep claimed ahead of the commands running: none until one task
        has shown how long they take."""
        short = self._mean is not None and self._mean < SHORT_TASK_SECONDS
        return AHEAD_PER_SLOT * self._slots if short else 0

    def refill_below(self) -> int:
        """Claim again once no more than this many tasks are left claimed ahead."""
        return self.ahead() // AHEAD_PER_SLOT
