"""How far ahead a worker claims, and how soon it reports. Tasks that take little time are
claimed before they are needed, about `AHEAD_SECONDS` of them per slot, so that the next
command starts as soon as one exits and one request serves many tasks; long ones are not
claimed ahead, so that no worker keeps tasks waiting that another could start. Successes are
reported with the next claim, or once they are as many as a claim's worth, or once the oldest
has waited `REPORT_WITHIN_SECONDS`: a run's progress is never more than that behind."""

from __future__ import annotations

from taskfarm.client.api import MAX_CLAIM_COUNT

#: Tasks shorter than this, by the mean of the last few, are claimed ahead.
SHORT_TASK_SECONDS = 2.0
#: How much each task that finishes moves that mean.
WEIGHT = 0.2
#: About how long the tasks claimed ahead for one slot take, at most: what a worker stopping
#: hands back, and what the others may wait for at the end of a run.
AHEAD_SECONDS = 0.5
#: Tasks claimed ahead per slot, at least (while tasks are short) and at most.
LEAST_AHEAD_PER_SLOT, MOST_AHEAD_PER_SLOT = 1, 32
#: A success waits no longer than this to be reported.
REPORT_WITHIN_SECONDS = 0.5


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
        if self._mean is None or self._mean >= SHORT_TASK_SECONDS:
            return 0
        if self._mean <= AHEAD_SECONDS / MOST_AHEAD_PER_SLOT:
            per_slot = MOST_AHEAD_PER_SLOT  # (tasks of no time at all would overflow the division)
        else:
            per_slot = max(LEAST_AHEAD_PER_SLOT, int(AHEAD_SECONDS / self._mean))
        return max(0, min(per_slot * self._slots, MAX_CLAIM_COUNT - self._slots))

    def refill_below(self) -> int:
        """Claim again once no more than this many tasks are left claimed ahead: a quarter,
        so that the claim is back before the commands run out."""
        return self.ahead() // 4

    def report_at(self) -> int:
        """Report the successes once they are this many, claiming or not."""
        return min(MAX_CLAIM_COUNT, max(self._slots, self.ahead()))
