"""The rules of one task: claiming, changing, restarting."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.domain import (
    FULL_PROGRESS,
    InvalidInput,
    Task,
    TaskChange,
    TaskState,
    percent_from_progress,
)
from tests import strategies


@given(task=strategies.tasks(), worker=strategies.worker_uuids())
def test_claimed_task_is_computing_for_its_worker_and_keeps_its_progress(
    task: Task, worker: str
) -> None:
    claimed = task.claimed_by(worker)

    assert claimed == Task(task.index, TaskState.COMPUTING, task.progress, worker)


def test_untouched_task_is_waiting_at_zero_for_nobody() -> None:
    assert Task.untouched(7) == Task(index=7, state=TaskState.WAITING, progress=0, worker=None)
    assert Task.untouched(7).percent_completed == 0.0


@given(task=strategies.tasks(), progress=st.none() | strategies.progresses())
def test_task_changed_to_waiting_belongs_to_nobody(task: Task, progress: int | None) -> None:
    changed = task.changed(TaskChange(progress=progress, state=TaskState.WAITING))

    assert changed.state is TaskState.WAITING
    assert changed.worker is None
    assert changed.progress == (task.progress if progress is None else progress)


@given(task=strategies.tasks(), state=st.sampled_from([TaskState.COMPUTING, TaskState.DONE]))
def test_task_changed_to_computing_or_done_keeps_its_worker(task: Task, state: TaskState) -> None:
    changed = task.changed(TaskChange(state=state))

    assert (changed.state, changed.worker, changed.progress) == (state, task.worker, task.progress)


@given(task=strategies.tasks(), progress=strategies.progresses())
def test_progress_change_leaves_state_and_worker_alone(task: Task, progress: int) -> None:
    changed = task.changed(TaskChange(progress=progress))

    assert changed == Task(task.index, task.state, progress, task.worker)


@given(task=strategies.tasks())
def test_empty_change_changes_nothing(task: Task) -> None:
    assert task.changed(TaskChange()) == task


def test_requeued_task_keeps_progress_to_resume_from_when_claimed_again() -> None:
    task = Task.untouched(3).claimed_by("a").changed(TaskChange(progress=42))
    requeued = task.changed(TaskChange(state=TaskState.WAITING))

    assert requeued.claimed_by("b") == Task(3, TaskState.COMPUTING, 42, "b")


@given(task=strategies.tasks())
def test_full_restart_makes_any_task_untouched(task: Task) -> None:
    assert task.restarted(everything=True) == Task.untouched(task.index)


@given(task=strategies.tasks(index=st.just(5)), progress=st.integers(0, FULL_PROGRESS - 1))
def test_partial_restart_requeues_unfinished_task_with_its_progress(
    task: Task, progress: int
) -> None:
    unfinished = Task(task.index, task.state, progress, task.worker)

    assert unfinished.restarted(everything=False) == Task(5, TaskState.WAITING, progress, None)


@pytest.mark.parametrize("state", list(TaskState))
def test_partial_restart_keeps_task_at_exactly_one_hundred_percent(state: TaskState) -> None:
    worker = None if state is TaskState.WAITING else "w"
    finished = Task(index=1, state=state, progress=FULL_PROGRESS, worker=worker)

    assert finished.restarted(everything=False) == finished


def test_partial_restart_requeues_task_just_short_of_one_hundred_percent() -> None:
    almost = Task(index=1, state=TaskState.DONE, progress=FULL_PROGRESS - 1, worker="w")

    assert almost.restarted(everything=False) == Task(1, TaskState.WAITING, FULL_PROGRESS - 1)


@pytest.mark.parametrize("state", list(TaskState))
def test_state_parses_from_its_published_name(state: TaskState) -> None:
    assert TaskState.parse(state.value) is state


@pytest.mark.parametrize(
    "value", ["DONE", "Done", " done", "finished", "", None, 1, ["done"], True]
)
def test_unknown_state_is_refused(value: object) -> None:
    with pytest.raises(InvalidInput, match="status must be one of waiting, computing, done"):
        TaskState.parse(value)


@given(percent=strategies.percents(), status=strategies.statuses())
def test_change_from_request_fields_converts_percent_and_status(
    percent: float, status: str
) -> None:
    change = TaskChange.from_fields(percent_completed=percent, status=status)

    assert change.state is TaskState(status)
    assert change.progress is not None
    assert abs(percent_from_progress(change.progress) - percent) <= 1e-6


def test_change_from_absent_fields_changes_nothing() -> None:
    assert TaskChange.from_fields() == TaskChange(progress=None, state=None)


@pytest.mark.parametrize(
    ("percent", "status"), [(101, None), (None, "finished"), ("50", None), (None, 3)]
)
def test_change_with_a_bad_field_is_refused(percent: object, status: object) -> None:
    with pytest.raises(InvalidInput):
        TaskChange.from_fields(percent_completed=percent, status=status)
