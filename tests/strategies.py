"""Hypothesis strategies for the values and operations of taskfarm's domain."""

from __future__ import annotations

import string

import attrs
from hypothesis import strategies as st

from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_TASKS,
    Run,
    Task,
    TaskChange,
    TaskState,
    WorkerRegistration,
)

#: Runs this small keep every index within reach of a few dozen random operations.
MAX_SMALL_RUN = 20


def run_sizes(max_size: int = MAX_SMALL_RUN) -> st.SearchStrategy[int]:
    return st.integers(min_value=1, max_value=max_size)


def valid_num_tasks() -> st.SearchStrategy[int]:
    return st.one_of(st.sampled_from([1, MAX_TASKS]), st.integers(1, MAX_TASKS))


def invalid_num_tasks() -> st.SearchStrategy[object]:
    """What `numTasks` may hold in a request that no run can have."""
    return st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=MAX_TASKS + 1),
        st.booleans(),
        st.floats(),
        st.text(),
        st.none(),
    )


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


def task_states() -> st.SearchStrategy[TaskState]:
    return st.sampled_from(TaskState)


def statuses() -> st.SearchStrategy[str]:
    """The `status` strings of the published API."""
    return st.sampled_from([state.value for state in TaskState])


def task_changes() -> st.SearchStrategy[TaskChange]:
    return st.builds(
        TaskChange,
        progress=st.none() | progresses(),
        state=st.none() | task_states(),
    )


def worker_uuids() -> st.SearchStrategy[str]:
    return st.uuids().map(str)


def hostnames() -> st.SearchStrategy[str]:
    return st.text(string.ascii_lowercase + string.digits + "-.", min_size=1, max_size=30)


def pids() -> st.SearchStrategy[int]:
    return st.integers(0, 2**22)


def registrations() -> st.SearchStrategy[WorkerRegistration]:
    return st.builds(WorkerRegistration, uuid=worker_uuids(), hostname=hostnames(), pid=pids())


@st.composite
def tasks(draw: st.DrawFn, index: st.SearchStrategy[int] | None = None) -> Task:
    """A task as the rules can leave it: only a task someone holds has a worker."""
    state = draw(task_states())
    worker = None if state is TaskState.WAITING else draw(worker_uuids())
    return Task(
        index=draw(index if index is not None else st.integers(0, MAX_SMALL_RUN - 1)),
        state=state,
        progress=draw(progresses()),
        worker=worker,
    )


@st.composite
def claim_situations(draw: st.DrawFn) -> tuple[Run, frozenset[int], frozenset[int]]:
    """A run, its requeued tasks and its stored tasks, as a store may hold them.

    Every index below the frontier is stored (a claim stores what it hands out); indices past
    it are stored when someone wrote them out of order. Requeued tasks are stored ones.
    """
    num_tasks = draw(run_sizes())
    frontier = draw(st.integers(0, num_tasks))
    past_frontier = (
        draw(st.sets(st.integers(frontier, num_tasks - 1))) if frontier < num_tasks else set()
    )
    stored = frozenset(range(frontier)) | frozenset(past_frontier)
    requeued = frozenset(draw(st.sets(st.sampled_from(sorted(stored))))) if stored else frozenset()
    return Run(id=1, uuid="run", num_tasks=num_tasks, frontier=frontier), requeued, stored


@attrs.frozen
class ClaimOp:
    worker: str


@attrs.frozen
class UpdateOp:
    index: int
    change: TaskChange


@attrs.frozen
class RestartOp:
    everything: bool


Operation = ClaimOp | UpdateOp | RestartOp


def operations(num_tasks: int, max_size: int = 40) -> st.SearchStrategy[list[Operation]]:
    """What workers and people do to one run of `num_tasks` tasks, in some order."""
    operation: st.SearchStrategy[Operation] = st.one_of(
        st.builds(ClaimOp, worker=worker_uuids()),
        st.builds(UpdateOp, index=st.integers(0, num_tasks - 1), change=task_changes()),
        st.builds(RestartOp, everything=st.booleans()),
    )
    return st.lists(operation, max_size=max_size)


def runs_with_operations() -> st.SearchStrategy[tuple[int, list[Operation]]]:
    return run_sizes().flatmap(lambda n: st.tuples(st.just(n), operations(n)))
