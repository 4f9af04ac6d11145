"""Hypothesis strategies for the values and operations of taskfarm's domain."""

from __future__ import annotations

import datetime as dt
import string

import attrs
from hypothesis import strategies as st

from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_CLAIM_COUNT,
    MAX_TASKS,
    Run,
    RunPolicy,
    Task,
    TaskChange,
    TaskState,
    WorkerRegistration,
)
from taskfarm.domain.policy import MAX_ATTEMPTS, MAX_LEASE_SECONDS

#: Runs this small keep every index within reach of a few dozen random operations.
MAX_SMALL_RUN = 20
#: Leases this short run out within a few steps of a clock moved a second or so at a time.
MAX_SHORT_LEASE = 4
#: Few enough attempts that random operations use them all up.
MAX_FEW_ATTEMPTS = 3
_FIRST_MOMENT = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_LAST_MOMENT = dt.datetime(2100, 1, 1, tzinfo=dt.UTC)


def run_sizes(max_size: int = MAX_SMALL_RUN) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=max_size)


def valid_num_tasks() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([1, MAX_TASKS]), st.integers(1, MAX_TASKS))


def invalid_num_tasks() -> st.SearchStrategy[object]:
    """What `numTasks` may hold in a request that no run can have."""
    return st.one_of(not_positive_up_to(MAX_TASKS), st.none())


def percents() -> st.SearchStrategy[int | float]:
    """Every percentage a task may report, whole or not."""
    return st.one_of(st.integers(0, 100), st.floats(min_value=0, max_value=100))


def invalid_percents() -> st.SearchStrategy[object]:
    return st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=101),
        st.floats(max_value=0, exclude_max=True),
        st.floats(min_value=100, exclude_min=True),
        st.just(float("nan")),
        st.booleans(),
        st.text(),
        st.none(),
    )


def progresses() -> st.SearchStrategy[int]:
    """Progress in units, with the boundaries that decide what a partial restart keeps."""
    return st.one_of(
        st.sampled_from([0, FULL_PROGRESS - 1, FULL_PROGRESS]),
        st.integers(0, FULL_PROGRESS),
    )


def moments() -> st.SearchStrategy[dt.datetime]:
    """Times in UTC, to the microsecond, far enough from the ends of `datetime` to add a lease."""
    century = int((_LAST_MOMENT - _FIRST_MOMENT) / dt.timedelta(microseconds=1))
    return st.integers(0, century).map(
        lambda microseconds: _FIRST_MOMENT + dt.timedelta(microseconds=microseconds)
    )


def positive_up_to(maximum: int) -> st.SearchStrategy[int]:
    """Whole numbers from 1 to `maximum`, the bounds always among them."""
    return st.one_of(st.sampled_from([1, maximum]), st.integers(1, maximum))


def not_positive_up_to(maximum: int) -> st.SearchStrategy[object]:
    """What a request may send where a whole number from 1 to `maximum` belongs, and is not.

    A float is one only when it has a fraction or is out of bounds: JSON does not tell 3 from 3.0.
    """
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=maximum + 1),
        st.booleans(),
        st.floats().filter(lambda f: not (f.is_integer() and 1 <= f <= maximum)),
        st.text(),
        st.lists(st.integers(1, maximum), max_size=2),
    )


def run_policies() -> st.SearchStrategy[RunPolicy]:
    return st.builds(
        RunPolicy,
        lease_seconds=st.none() | positive_up_to(MAX_LEASE_SECONDS),
        max_attempts=st.none() | positive_up_to(MAX_ATTEMPTS),
    )


def short_run_policies() -> st.SearchStrategy[RunPolicy]:
    """Policies whose leases run out and whose attempts are used up within a few operations;
    most have a lease, some have none."""
    return st.builds(
        RunPolicy,
        lease_seconds=st.sampled_from([None, *range(1, MAX_SHORT_LEASE + 1)]),
        max_attempts=st.sampled_from([None, *range(1, MAX_FEW_ATTEMPTS + 1)]),
    )


def claim_counts() -> st.SearchStrategy[int]:
    return positive_up_to(MAX_CLAIM_COUNT)


def task_states() -> st.SearchStrategy[TaskState]:
    return st.sampled_from(TaskState)


def statuses() -> st.SearchStrategy[str]:
    """The `status` strings of the published API."""
    return st.sampled_from([state.value for state in TaskState])


def task_changes() -> st.SearchStrategy[TaskChange]:
    """Changes as a request may make them: an exit status and an error only with a state
    that ends an attempt."""
    return st.builds(
        TaskChange,
        progress=st.none() | progresses(),
        state=st.none() | task_states(),
    ) | st.builds(
        TaskChange,
        progress=st.none() | progresses(),
        state=st.sampled_from([TaskState.DONE, TaskState.FAILED, TaskState.WAITING]),
        exit_code=st.none() | st.integers(-64, 255),
        error=st.none() | errors(),
    )


def errors() -> st.SearchStrategy[str]:
    """What a command's error output may end with: any storable text, quotes and newlines."""
    return st.text(
        st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40
    ) | st.sampled_from(["", "Traceback (most recent call last):\n  ValueError: 'x'\n"])


def worker_uuids() -> st.SearchStrategy[str]:
    return st.uuids().map(str)


def hostnames() -> st.SearchStrategy[str]:
    return st.text(string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=30)


def pids() -> st.SearchStrategy[int]:
    return st.integers(0, 2**22)


def registrations() -> st.SearchStrategy[WorkerRegistration]:
    return st.builds(WorkerRegistration, uuid=worker_uuids(), hostname=hostnames(), pid=pids())


@st.composite
def tasks(
    draw: st.DrawFn,
    index: st.SearchStrategy[int] | None = None,
    state: st.SearchStrategy[TaskState] | None = None,
) -> Task:
    """A task as the rules can leave it. Only a computing or finished task has a worker (one
    a person set computing or done may have none); only a computing one has a lease; a failed
    one was claimed at least once."""
    drawn_state = draw(state if state is not None else task_states())
    held = drawn_state in (TaskState.COMPUTING, TaskState.DONE)
    return Task(
        index=draw(index if index is not None else st.integers(0, MAX_SMALL_RUN - 1)),
        state=drawn_state,
        progress=draw(progresses()),
        worker=draw(st.none() | worker_uuids()) if held else None,
        attempts=draw(st.integers(1 if drawn_state is TaskState.FAILED else 0, 5)),
        lease_expires=draw(st.none() | moments()) if drawn_state is TaskState.COMPUTING else None,
        started=draw(st.none() | moments()),
    )


def held_tasks() -> st.SearchStrategy[Task]:
    """A task computing for a worker, as a claim leaves it."""
    return st.builds(
        Task,
        index=st.integers(0, MAX_SMALL_RUN - 1),
        state=st.just(TaskState.COMPUTING),
        progress=progresses(),
        worker=worker_uuids(),
        attempts=st.integers(1, 5),
        lease_expires=st.none() | moments(),
    )


@st.composite
def claim_situations(draw: st.DrawFn) -> ClaimSituation:
    """A run, its requeued, deferred and stored tasks, as a store may hold them.

    Every index below the frontier is stored (a claim stores what it hands out); indices past
    it are stored when someone wrote them out of order. Requeued and deferred tasks are stored
    ones, never both.
    """
    num_tasks = draw(run_sizes())
    frontier = draw(st.integers(0, num_tasks))
    past_frontier = (
        draw(st.sets(st.integers(frontier, num_tasks - 1))) if frontier < num_tasks else set()
    )
    stored = frozenset(range(frontier)) | frozenset(past_frontier)
    waiting = frozenset(draw(st.sets(st.sampled_from(sorted(stored))))) if stored else frozenset()
    deferred = frozenset(draw(st.sets(st.sampled_from(sorted(waiting))))) if waiting else waiting
    run = Run(id=1, uuid="run", num_tasks=num_tasks, frontier=frontier)
    return ClaimSituation(run, waiting - deferred, deferred, stored)


@attrs.frozen
class ClaimSituation:
    run: Run
    requeued: frozenset[int]
    deferred: frozenset[int]
    stored: frozenset[int]


@attrs.frozen
class ClaimOp:
    worker: str
    count: int = 1


@attrs.frozen
class UpdateOp:
    """A change by a person (`by` None) or by a worker that says who it is."""

    index: int
    change: TaskChange
    by: str | None = None


@attrs.frozen
class RestartOp:
    everything: bool


@attrs.frozen
class WaitOp:
    """Time passing, then the leases that ran out expiring."""

    seconds: int


Operation = ClaimOp | UpdateOp | RestartOp | WaitOp

#: A few workers, so that updates often come from the worker holding the task, or another.
_FEW_WORKERS = ["worker-a", "worker-b", "worker-c"]


def operations(num_tasks: int, max_size: int = 40) -> st.SearchStrategy[list[Operation]]:
    """What workers, people and time do to one run of `num_tasks` tasks, in some order."""
    workers = st.sampled_from(_FEW_WORKERS)
    operation: st.SearchStrategy[Operation] = st.one_of(
        st.builds(ClaimOp, worker=workers, count=st.integers(1, 4)),
        st.builds(
            UpdateOp,
            index=st.integers(0, num_tasks - 1),
            change=task_changes(),
            by=st.none() | workers,
        ),
        st.builds(RestartOp, everything=st.booleans()),
        st.builds(WaitOp, seconds=st.integers(0, MAX_SHORT_LEASE + 1)),
    )
    return st.lists(operation, max_size=max_size)


def runs_with_operations() -> st.SearchStrategy[tuple[int, RunPolicy, list[Operation]]]:
    """A run's size and policy, and what happens to it."""
    return run_sizes().flatmap(lambda n: st.tuples(st.just(n), short_run_policies(), operations(n)))
