"""A task: one index of a run, its state and how far it has got."""

from __future__ import annotations

import enum

import attrs

from taskfarm.domain.errors import InvalidInput

#: Progress is kept in millionths of a percent, so that a run's sum of progress is an exact
#: integer that every store can maintain incrementally and that always equals a recount.
PROGRESS_UNITS_PER_PERCENT = 1_000_000
FULL_PROGRESS = 100 * PROGRESS_UNITS_PER_PERCENT


class TaskState(enum.Enum):
    """Where a task is in its life. A task nobody has touched yet is `WAITING`."""

    WAITING = "waiting"
    COMPUTING = "computing"
    DONE = "done"

    @classmethod
    def parse(cls, value: object) -> TaskState:
        try:
            return cls(value)
        except ValueError:
            names = ", ".join(state.value for state in cls)
            raise InvalidInput(f"status must be one of {names}, not {value!r}") from None


def progress_from_percent(percent: object) -> int:
    """Turn a percentage from the outside world into progress units, or refuse it."""
    if isinstance(percent, bool) or not isinstance(percent, int | float):
        raise InvalidInput(f"percentCompleted must be a number, not {percent!r}")
    # The comparison refuses NaN and infinities too, and, unlike math.isfinite, cannot
    # overflow on a huge JSON integer.
    if not 0 <= percent <= 100:
        raise InvalidInput(f"percentCompleted must be between 0 and 100, not {percent!r}")
    return round(percent * PROGRESS_UNITS_PER_PERCENT)


def percent_from_progress(progress: int) -> float:
    return progress / PROGRESS_UNITS_PER_PERCENT


@attrs.frozen
class TaskChange:
    """What a worker or a person asks to change on one task; `None` leaves a field alone."""

    progress: int | None = None
    state: TaskState | None = None

    @classmethod
    def from_fields(cls, percent_completed: object = None, status: object = None) -> TaskChange:
        return cls(
            progress=None
            if percent_completed is None
            else progress_from_percent(percent_completed),
            state=None if status is None else TaskState.parse(status),
        )


@attrs.frozen
class Task:
    """One task of a run. Tasks nobody has touched are not stored: they are `untouched(i)`."""

    index: int
    state: TaskState = TaskState.WAITING
    progress: int = 0
    worker: str | None = None

    @classmethod
    def untouched(cls, index: int) -> Task:
        return cls(index=index)

    @property
    def percent_completed(self) -> float:
        return percent_from_progress(self.progress)

    def claimed_by(self, worker_uuid: str) -> Task:
        """The task handed to a worker. A requeued task keeps its progress to resume from."""
        return attrs.evolve(self, state=TaskState.COMPUTING, worker=worker_uuid)

    def changed(self, change: TaskChange) -> Task:
        state = self.state if change.state is None else change.state
        progress = self.progress if change.progress is None else change.progress
        # A task handed back belongs to nobody until it is claimed again.
        worker = None if state is TaskState.WAITING else self.worker
        return attrs.evolve(self, state=state, progress=progress, worker=worker)

    def restarted(self, *, everything: bool) -> Task:
        """`everything` starts the task afresh; otherwise only unfinished work is redone."""
        if everything:
            return attrs.evolve(self, state=TaskState.WAITING, progress=0, worker=None)
        if self.progress < FULL_PROGRESS:
            return attrs.evolve(self, state=TaskState.WAITING, worker=None)
        return self
