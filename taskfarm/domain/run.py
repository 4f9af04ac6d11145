"""A run: N independent tasks, indexed 0..N-1, and the counters that say how far it is."""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Iterable

import attrs

from taskfarm.domain.errors import InvalidInput, TaskNotFound
from taskfarm.domain.inputs import InputKind
from taskfarm.domain.limits import MAX_CLAIM_COUNT, MAX_INDICES_PER_REQUEST, MAX_TASKS
from taskfarm.domain.policy import RunPolicy
from taskfarm.domain.task import PROGRESS_UNITS_PER_PERCENT, Task, TaskState
from taskfarm.domain.values import whole_number


def check_num_tasks(num_tasks: object) -> int:
    return whole_number("numTasks", num_tasks, 1, MAX_TASKS)


def check_claim_count(count: object, least: int = 1) -> int:
    """How many tasks a claim asks for: `least` is 0 for a claim that reports tasks done."""
    return whole_number("count", count, least, MAX_CLAIM_COUNT)


def check_task_indices(indices: object) -> list[int]:
    """Indices of tasks named in one request: a list, short enough to act on at once."""
    if not isinstance(indices, list) or not 1 <= len(indices) <= MAX_INDICES_PER_REQUEST:
        raise InvalidInput(
            f"tasks must be a list of 1 to {MAX_INDICES_PER_REQUEST} task indices; "
            "send more in several requests"
        )
    return [whole_number("each task index", index, 0, MAX_TASKS - 1) for index in indices]


def check_held_indices(field: str, indices: object) -> list[int]:
    """The tasks a worker reports on in the request's `field`, at most a claim's worth: those
    it finished as it claims more, or those whose leases it renews. Each once, in order."""
    if not isinstance(indices, list) or len(indices) > MAX_CLAIM_COUNT:
        raise InvalidInput(f"{field} must be a list of at most {MAX_CLAIM_COUNT} task indices")
    checked = [whole_number("each task index", index, 0, MAX_TASKS - 1) for index in indices]
    return list(dict.fromkeys(checked))


@attrs.frozen
class Wanted:
    """One worker's claim on a run: how many tasks it asks for."""

    worker_uuid: str
    count: int


@attrs.frozen
class RunCounters:
    """Tasks by state and the sum of their progress, kept up to date on every change.

    Waiting tasks are not counted: they are whatever is neither computing, done nor failed,
    untouched tasks included, so a run of 10**9 tasks needs no more than these four numbers.
    `progress` is exact in 64 bits up to 9 * 10**10 finished tasks.
    """

    computing: int = 0
    done: int = 0
    failed: int = 0
    progress: int = 0

    @classmethod
    def of(cls, tasks: Iterable[Task]) -> RunCounters:
        """A recount from scratch: what the incremental counters must always equal."""
        counters = cls()
        for task in tasks:
            counters = counters.moved(Task.untouched(task.index), task)
        return counters

    def moved(self, before: Task, after: Task) -> RunCounters:
        """The counters once one task went from `before` to `after`."""
        return attrs.evolve(
            self,
            computing=self.computing
            + _is(after, TaskState.COMPUTING)
            - _is(before, TaskState.COMPUTING),
            done=self.done + _is(after, TaskState.DONE) - _is(before, TaskState.DONE),
            failed=self.failed + _is(after, TaskState.FAILED) - _is(before, TaskState.FAILED),
            progress=self.progress + after.progress - before.progress,
        )


def _is(task: Task, state: TaskState) -> int:
    return int(task.state is state)


@attrs.frozen
class Run:
    """A run of `num_tasks` tasks. Tasks at or past `frontier` have never been handed out.
    `name` is what people may call it instead of its uuid; `created` is None for runs stored
    before runs kept it. `inputs` says where its tasks' inputs come from, None when a task is
    only its index. `owner` is the name of the user who created it; None for a run stored
    before runs had owners, or whose owner was deleted: only admins see those."""

    id: int
    uuid: str
    num_tasks: int
    policy: RunPolicy = attrs.field(factory=RunPolicy)
    frontier: int = 0
    counters: RunCounters = attrs.field(factory=RunCounters)
    name: str | None = None
    created: dt.datetime | None = None
    inputs: InputKind | None = None
    owner: str | None = None

    @property
    def num_computing(self) -> int:
        return self.counters.computing

    @property
    def num_done(self) -> int:
        return self.counters.done

    @property
    def num_failed(self) -> int:
        return self.counters.failed

    @property
    def num_waiting(self) -> int:
        counters = self.counters
        return self.num_tasks - counters.computing - counters.done - counters.failed

    @property
    def percent_done(self) -> float:
        return self.counters.progress / PROGRESS_UNITS_PER_PERCENT / self.num_tasks

    def check_index(self, index: int) -> int:
        if not 0 <= index < self.num_tasks:
            raise TaskNotFound(index, self.num_tasks)
        return index


@attrs.frozen
class Claim:
    """Which task a claim hands out, and where the frontier of untouched tasks moves to."""

    index: int
    frontier: int


def next_claim(
    run: Run, requeued: Iterable[int], deferred: Iterable[int], stored: Container[int]
) -> Claim | None:
    """The allocation rule every store must execute atomically.

    Tasks handed back with no attempt used (`requeued`: stored, waiting and not
    `Task.deferred`) go out first, lowest index first; then the lowest index past the frontier
    that nobody has touched; then the `deferred` tasks, those waiting after a failure or a lost
    lease, lowest index first. Tasks written out of order (a `PUT` on an index past the
    frontier) are stored, so the frontier skips them. `None` means nothing is left to hand out.
    """
    first_requeued = min(requeued, default=None)
    if first_requeued is not None:
        return Claim(index=first_requeued, frontier=run.frontier)
    index = run.frontier
    while index < run.num_tasks and index in stored:
        index += 1
    if index < run.num_tasks:
        return Claim(index=index, frontier=index + 1)
    first_deferred = min(deferred, default=None)
    if first_deferred is not None:
        return Claim(index=first_deferred, frontier=index)
    return None
