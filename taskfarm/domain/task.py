"""A task: one index of a run, its state and how far it has got."""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from taskfarm.domain.errors import Conflict, InvalidInput
from taskfarm.domain.policy import RunPolicy

#: Progress is kept in millionths of a percent, so that a run's sum of progress is an exact
#: integer that every store can maintain incrementally and that always equals a recount.
PROGRESS_UNITS_PER_PERCENT = 1_000_000
FULL_PROGRESS = 100 * PROGRESS_UNITS_PER_PERCENT


class TaskState(enum.Enum):
    """Where a task is in its life. A task nobody has touched yet is `WAITING`."""

    WAITING = "waiting"
    COMPUTING = "computing"
    DONE = "done"
    #: Lost its lease as many times as its run allows; a restart brings it back.
    FAILED = "failed"

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

    @property
    def renews_only(self) -> bool:
        """A heartbeat: it changes nothing but the lease of a computing task."""
        return self.progress is None and self.state is None


@attrs.frozen
class Task:
    """One task of a run. Tasks nobody has touched are not stored: they are `untouched(i)`.

    `attempts` counts the claims of the task since it was last restarted; `lease_expires` is
    when a computing task goes back to the queue unless its worker is heard from first.
    """

    index: int
    state: TaskState = TaskState.WAITING
    progress: int = 0
    worker: str | None = None
    attempts: int = 0
    lease_expires: dt.datetime | None = None

    @classmethod
    def untouched(cls, index: int) -> Task:
        return cls(index=index)

    @property
    def percent_completed(self) -> float:
        return percent_from_progress(self.progress)

    def claimed_by(self, worker_uuid: str, now: dt.datetime, policy: RunPolicy) -> Task:
        """The task handed to a worker. A requeued task keeps its progress to resume from."""
        return attrs.evolve(
            self,
            state=TaskState.COMPUTING,
            worker=worker_uuid,
            attempts=self.attempts + 1,
            lease_expires=policy.lease_expiry(now),
        )

    def changed(
        self, change: TaskChange, now: dt.datetime, policy: RunPolicy, by: str | None = None
    ) -> Task:
        """The task after a worker or a person changed it. Any change renews the lease.

        `by` is the worker making the change, when it says so: a worker whose task was taken
        from it (its lease ran out and another worker claimed it) may not change it any more.
        A change of nothing (a heartbeat) is for a computing task: any other has no lease.
        """
        if by is not None and self.worker is not None and self.worker != by:
            raise Conflict(
                f"task {self.index} now belongs to worker {self.worker!r}, not {by!r}: "
                "its lease ran out and it was handed out again"
            )
        if change.renews_only and self.state is not TaskState.COMPUTING:
            # Storing an untouched task as it is would move it ahead of the claim queue.
            raise Conflict(
                f"task {self.index} is {self.state.value}, not computing: it has no lease to "
                "renew; claim a task first"
            )
        state = self.state if change.state is None else change.state
        progress = self.progress if change.progress is None else change.progress
        # A task computed or finished is held by its worker, or by the worker changing it: a
        # finished task remembers who finished it, so that no other worker whose lease ran
        # out can finish it again. A task waiting or failed belongs to nobody.
        held = state in (TaskState.COMPUTING, TaskState.DONE)
        worker = self.worker or by if held else None
        lease_expires = policy.lease_expiry(now) if state is TaskState.COMPUTING else None
        return attrs.evolve(
            self, state=state, progress=progress, worker=worker, lease_expires=lease_expires
        )

    def lease_has_expired(self, now: dt.datetime) -> bool:
        return (
            self.state is TaskState.COMPUTING
            and self.lease_expires is not None
            and self.lease_expires <= now
        )

    def expired(self, policy: RunPolicy) -> Task:
        """The task once its lease ran out: back in the queue, or failed after too many tries."""
        state = TaskState.FAILED if policy.out_of_attempts(self.attempts) else TaskState.WAITING
        return attrs.evolve(self, state=state, worker=None, lease_expires=None)

    def restarted(self, *, everything: bool) -> Task:
        """`everything` starts the task afresh; otherwise only unfinished work is redone."""
        if everything:
            return Task.untouched(self.index)
        if self.progress < FULL_PROGRESS or self.state is TaskState.FAILED:
            return attrs.evolve(
                self, state=TaskState.WAITING, worker=None, attempts=0, lease_expires=None
            )
        return self
