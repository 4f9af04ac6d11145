"""A task: one index of a run, its state and how far it has got."""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from taskfarm.domain.attempts import Attempt, AttemptOutcome, check_error, check_exit_code
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
    #: Failed, or lost its lease, as many times as its run allows; a retry brings it back.
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


#: How an attempt ends when its task is set to each state but computing.
_ENDS_AS = {
    TaskState.DONE: AttemptOutcome.DONE,
    TaskState.FAILED: AttemptOutcome.FAILED,
    TaskState.WAITING: AttemptOutcome.HANDED_BACK,
}


@attrs.frozen
class TaskChange:
    """What a worker or a person asks to change on one task; `None` leaves a field alone.
    `exit_code` and `error` tell how the command of the attempt that this change ends went."""

    progress: int | None = None
    state: TaskState | None = None
    exit_code: int | None = None
    error: str | None = None

    @classmethod
    def from_fields(
        cls,
        percent_completed: object = None,
        status: object = None,
        exit_code: object = None,
        error: object = None,
    ) -> TaskChange:
        change = cls(
            progress=None
            if percent_completed is None
            else progress_from_percent(percent_completed),
            state=None if status is None else TaskState.parse(status),
            exit_code=None if exit_code is None else check_exit_code(exit_code),
            error=None if error is None else check_error(error),
        )
        if change.reports_outcome and change.state not in _ENDS_AS:
            raise InvalidInput(
                "exitCode and error tell how an attempt ended: send them with status done, "
                "failed or waiting"
            )
        return change

    @property
    def renews_only(self) -> bool:
        """A heartbeat: it changes nothing but the lease of a computing task."""
        return self.progress is None and self.state is None

    @property
    def reports_outcome(self) -> bool:
        return self.exit_code is not None or self.error is not None


@attrs.frozen
class Task:
    """One task of a run. Tasks nobody has touched are not stored: they are `untouched(i)`.

    `attempts` counts the attempts the task used since it was last restarted or retried:
    every claim starts one, and a task handed back by its worker gives its attempt back.
    `started` is when its last attempt started; `lease_expires` is when a computing task goes
    back to the queue unless its worker is heard from first.
    """

    index: int
    state: TaskState = TaskState.WAITING
    progress: int = 0
    worker: str | None = None
    attempts: int = 0
    lease_expires: dt.datetime | None = None
    started: dt.datetime | None = None

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
            started=now,
        )

    def changed(
        self, change: TaskChange, now: dt.datetime, policy: RunPolicy, by: str | None = None
    ) -> Task:
        """The task after a worker or a person changed it. Any change renews the lease.

        `by` is the worker making the change, when it says so: a worker whose task was taken
        from it (its lease ran out and another worker claimed it) may not change it any more.
        A change of nothing (a heartbeat) is for a computing task: any other has no lease.

        A computing task set to another state ends its attempt. Set to `waiting`, it is handed
        back and gives its attempt back. Set to `failed`, it goes back to the queue while its
        run allows more attempts (a run without `max_attempts` does not: a failure is final,
        as it always was).
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
        attempts = self.attempts
        if self.ends_attempt(change):
            if change.state is TaskState.WAITING:
                # Never below 0: a task can be set computing without a claim.
                attempts = max(attempts - 1, 0)
            elif change.state is TaskState.FAILED and policy.retries_failure(attempts):
                state = TaskState.WAITING
        progress = self.progress if change.progress is None else change.progress
        # A task computed or finished is held by its worker, or by the worker changing it: a
        # finished task remembers who finished it, so that no other worker whose lease ran
        # out can finish it again. A task waiting or failed belongs to nobody.
        held = state in (TaskState.COMPUTING, TaskState.DONE)
        worker = self.worker or by if held else None
        lease_expires = policy.lease_expiry(now) if state is TaskState.COMPUTING else None
        return attrs.evolve(
            self,
            state=state,
            progress=progress,
            worker=worker,
            attempts=attempts,
            lease_expires=lease_expires,
        )

    def ends_attempt(self, change: TaskChange) -> bool:
        return self.state is TaskState.COMPUTING and change.state in _ENDS_AS

    def attempt_ended(
        self, change: TaskChange, now: dt.datetime, by: str | None = None
    ) -> Attempt | None:
        """The record of the attempt that `change` ends, made by `by`; None when it ends
        none. A change that says how a command went is recorded even when the task was not
        computing: a person marking a task failed, with the reason."""
        if change.state not in _ENDS_AS or not (
            self.ends_attempt(change) or change.reports_outcome
        ):
            return None
        return Attempt(
            outcome=_ENDS_AS[change.state],
            worker=self.worker or by,
            started=self.started,
            ended=now,
            exit_code=change.exit_code,
            error=change.error,
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

    def attempt_lost(self) -> Attempt:
        """The record of the attempt whose lease ran out: it ended when the lease did."""
        return Attempt(
            outcome=AttemptOutcome.LOST,
            worker=self.worker,
            started=self.started,
            ended=self.lease_expires,
        )

    @property
    def deferred(self) -> bool:
        """Whether the task waits behind every task that never ran: it is waiting after using
        an attempt (its command failed, or its lease ran out). So a task that fails each time
        cannot hold up its run, nor stop every worker by failing on each of them in turn."""
        return self.state is TaskState.WAITING and self.attempts > 0

    @property
    def retryable(self) -> bool:
        """Whether a retry puts the task back: only finished ones, failed or done."""
        return self.state in (TaskState.FAILED, TaskState.DONE)

    def retried(self) -> Task:
        """The task back in the queue, from the start, with all its attempts before it."""
        return attrs.evolve(
            self, state=TaskState.WAITING, progress=0, worker=None, attempts=0, lease_expires=None
        )

    def restarted(self, *, everything: bool) -> Task:
        """`everything` starts the task afresh; otherwise only unfinished work is redone."""
        if everything:
            return Task.untouched(self.index)
        if self.progress < FULL_PROGRESS or self.state is TaskState.FAILED:
            return attrs.evolve(
                self, state=TaskState.WAITING, worker=None, attempts=0, lease_expires=None
            )
        return self
