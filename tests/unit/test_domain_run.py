"""The rules of a run: its size, its counters and which task it hands out next."""

from __future__ import annotations

import contextlib
import datetime as dt

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_CLAIM_COUNT,
    MAX_TASKS,
    Claim,
    Conflict,
    InvalidInput,
    Run,
    RunCounters,
    RunPolicy,
    Task,
    TaskNotFound,
    TaskState,
    check_claim_count,
    check_num_tasks,
    next_claim,
)
from tests import strategies
from tests.strategies import ClaimOp, ClaimSituation, Operation, RestartOp, UpdateOp

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize("num_tasks", [1, 2, 1000, MAX_TASKS])
def test_run_size_from_one_to_two_to_the_53_is_accepted(num_tasks: int) -> None:
    assert check_num_tasks(num_tasks) == num_tasks


@pytest.mark.parametrize(
    "num_tasks", [0, -1, MAX_TASKS + 1, 10**400, True, False, 0.0, 5.5, "5", None, [5]]
)
def test_run_size_that_is_not_a_whole_number_in_bounds_is_refused(num_tasks: object) -> None:
    with pytest.raises(InvalidInput, match="numTasks"):
        check_num_tasks(num_tasks)


def test_run_size_written_with_a_decimal_point_is_the_whole_number() -> None:
    assert check_num_tasks(5.0) == 5
    assert type(check_num_tasks(5.0)) is int


@given(num_tasks=strategies.invalid_num_tasks())
def test_any_run_size_out_of_bounds_is_refused(num_tasks: object) -> None:
    with pytest.raises(InvalidInput):
        check_num_tasks(num_tasks)


def _apply(
    run: Run, tasks: dict[int, Task], operation: Operation, now: dt.datetime
) -> tuple[Run, dt.datetime]:
    """One operation as a store carries it out, moving the counters step by step."""
    changes: list[tuple[Task, Task]] = []
    if isinstance(operation, ClaimOp):
        for _ in range(operation.count):
            waiting = [task for task in tasks.values() if task.state is TaskState.WAITING]
            claim = next_claim(
                run,
                [task.index for task in waiting if not task.deferred],
                [task.index for task in waiting if task.deferred],
                tasks,
            )
            if claim is None:
                break
            before = tasks.get(claim.index, Task.untouched(claim.index))
            run = _moved(run, tasks, before, before.claimed_by(operation.worker, now, run.policy))
            run = attrs.evolve(run, frontier=claim.frontier)
    elif isinstance(operation, UpdateOp):
        before = tasks.get(operation.index, Task.untouched(operation.index))
        # A change refused as a conflict changes nothing.
        with contextlib.suppress(Conflict):
            changes = [(before, before.changed(operation.change, now, run.policy, operation.by))]
    elif isinstance(operation, RestartOp):
        changes = [
            (task, task.restarted(everything=operation.everything)) for task in tasks.values()
        ]
    else:
        now += dt.timedelta(seconds=operation.seconds)
        changes = [
            (task, task.expired(run.policy))
            for task in tasks.values()
            if task.lease_has_expired(now)
        ]
    for before, after in changes:
        run = _moved(run, tasks, before, after)
    return run, now


def _moved(run: Run, tasks: dict[int, Task], before: Task, after: Task) -> Run:
    tasks[after.index] = after
    return attrs.evolve(run, counters=run.counters.moved(before, after))


@given(run_and_operations=strategies.runs_with_operations())
def test_counters_moved_task_by_task_always_equal_a_recount(
    run_and_operations: tuple[int, RunPolicy, list[Operation]],
) -> None:
    num_tasks, policy, operations = run_and_operations
    run = Run(id=1, uuid="run", num_tasks=num_tasks, policy=policy)
    tasks: dict[int, Task] = {}
    now = START
    for operation in operations:
        run, now = _apply(run, tasks, operation, now)
        assert run.counters == RunCounters.of(tasks.values())
        counters = run.counters
        assert run.num_waiting == num_tasks - counters.computing - counters.done - counters.failed
        assert run.num_waiting >= 0


@pytest.mark.parametrize("state", list(TaskState))
@given(task=strategies.tasks(index=st.just(0)))
def test_counters_move_by_one_from_any_state_to_any_other(task: Task, state: TaskState) -> None:
    after = attrs.evolve(task, state=state)

    moved = RunCounters.of([task]).moved(task, after)

    assert moved == RunCounters.of([after])


def test_counters_of_no_tasks_are_zero() -> None:
    assert RunCounters.of([]) == RunCounters(computing=0, done=0, failed=0, progress=0)


def test_counters_recount_states_and_sum_progress() -> None:
    tasks = [
        Task(0, TaskState.DONE, FULL_PROGRESS, "a"),
        Task(1, TaskState.COMPUTING, 250, "b"),
        Task(2, TaskState.COMPUTING, 0, "c"),
        Task(3, TaskState.WAITING, 40, None),
        Task(4, TaskState.FAILED, 7, None, attempts=3),
    ]

    assert RunCounters.of(tasks) == RunCounters(
        computing=2, done=1, failed=1, progress=FULL_PROGRESS + 297
    )


def test_waiting_tasks_include_untouched_ones() -> None:
    run = Run(id=1, uuid="r", num_tasks=10, counters=RunCounters(computing=3, done=2, progress=0))

    assert (run.num_computing, run.num_done, run.num_waiting) == (3, 2, 5)


def test_failed_tasks_are_not_waiting() -> None:
    counters = RunCounters(computing=3, done=2, failed=4, progress=0)
    run = Run(id=1, uuid="r", num_tasks=10, counters=counters)

    assert (run.num_computing, run.num_done, run.num_failed, run.num_waiting) == (3, 2, 4, 1)


def test_new_run_has_no_lease_and_no_attempt_limit() -> None:
    assert Run(id=1, uuid="r", num_tasks=3).policy == RunPolicy(None, None)


@given(count=strategies.claim_counts())
def test_claim_of_one_to_a_thousand_tasks_at_once_is_accepted(count: int) -> None:
    assert check_claim_count(count) == count


@pytest.mark.parametrize(
    "count", [0, -1, MAX_CLAIM_COUNT + 1, 10**20, True, False, 0.5, 2.5, "2", None, [2]]
)
def test_claim_count_that_is_not_a_whole_number_in_bounds_is_refused(count: object) -> None:
    with pytest.raises(InvalidInput, match="count must be"):
        check_claim_count(count)


@given(count=strategies.not_positive_up_to(MAX_CLAIM_COUNT))
def test_any_claim_count_out_of_bounds_is_refused(count: object) -> None:
    with pytest.raises(InvalidInput):
        check_claim_count(count)


def test_percent_done_averages_progress_over_every_task() -> None:
    counters = RunCounters(computing=1, done=1, progress=FULL_PROGRESS + FULL_PROGRESS // 2)
    run = Run(id=1, uuid="r", num_tasks=4, counters=counters)

    assert run.percent_done == pytest.approx(37.5)


def test_fresh_run_is_zero_percent_done_and_all_waiting() -> None:
    run = Run(id=1, uuid="r", num_tasks=MAX_TASKS)

    assert (run.percent_done, run.num_waiting) == (0.0, MAX_TASKS)


@given(tasks=st.lists(strategies.tasks(index=st.integers(0, 9)), unique_by=lambda t: t.index))
def test_percent_done_is_the_mean_percent_of_every_task_untouched_ones_included(
    tasks: list[Task],
) -> None:
    run = Run(id=1, uuid="r", num_tasks=10, counters=RunCounters.of(tasks))

    assert run.percent_done == pytest.approx(sum(t.percent_completed for t in tasks) / 10)
    assert run.num_waiting == 10 - sum(t.state is not TaskState.WAITING for t in tasks)


def test_run_with_every_task_done_in_full_is_100_percent_done() -> None:
    done = [Task(i, TaskState.DONE, FULL_PROGRESS, "w") for i in range(3)]
    run = Run(id=1, uuid="r", num_tasks=3, counters=RunCounters.of(done))

    assert (run.percent_done, run.num_waiting) == (100.0, 0)


@pytest.mark.parametrize("index", [-1, 3, 10**20])
def test_index_outside_the_run_is_not_found(index: int) -> None:
    with pytest.raises(TaskNotFound, match="numbered 0 to 2"):
        Run(id=1, uuid="r", num_tasks=3).check_index(index)


@given(situation=strategies.claim_situations())
def test_requeued_task_is_handed_out_lowest_first_without_moving_the_frontier(
    situation: ClaimSituation,
) -> None:
    run, requeued, deferred, stored = attrs.astuple(situation, recurse=False)
    if requeued:
        assert next_claim(run, requeued, deferred, stored) == Claim(min(requeued), run.frontier)


@given(situation=strategies.claim_situations())
def test_without_requeued_tasks_the_lowest_untouched_task_past_the_frontier_goes_out(
    situation: ClaimSituation,
) -> None:
    run, _, deferred, stored = attrs.astuple(situation, recurse=False)
    untouched = [i for i in range(run.frontier, run.num_tasks) if i not in stored]

    claim = next_claim(run, [], deferred, stored)

    if untouched:
        assert claim == Claim(index=untouched[0], frontier=untouched[0] + 1)
    elif deferred:
        assert claim == Claim(index=min(deferred), frontier=run.num_tasks)
    else:
        assert claim is None


def test_a_deferred_task_goes_out_only_after_every_untouched_one() -> None:
    run = Run(id=1, uuid="r", num_tasks=4, frontier=1)
    handed_out: list[int] = []
    while (claim := next_claim(run, [], {0} - set(handed_out), {0, 3})) is not None:
        handed_out.append(claim.index)
        run = attrs.evolve(run, frontier=claim.frontier)

    assert handed_out == [1, 2, 0]


@given(num_tasks=strategies.run_sizes())
def test_fresh_run_hands_out_every_task_in_order_then_nothing(num_tasks: int) -> None:
    run = Run(id=1, uuid="r", num_tasks=num_tasks)
    handed_out = []
    while (claim := next_claim(run, [], [], range(run.frontier))) is not None:
        handed_out.append(claim.index)
        run = attrs.evolve(run, frontier=claim.frontier)

    assert handed_out == list(range(num_tasks))


def test_frontier_skips_tasks_written_out_of_order() -> None:
    run = Run(id=1, uuid="r", num_tasks=5, frontier=1)

    assert next_claim(run, [], [], {0, 1, 2, 4}) == Claim(index=3, frontier=4)


def test_nothing_is_handed_out_once_every_task_is_stored_and_none_is_requeued() -> None:
    run = Run(id=1, uuid="r", num_tasks=3, frontier=1)

    assert next_claim(run, [], [], {0, 1, 2}) is None
