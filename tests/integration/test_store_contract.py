"""What every store must do: one suite, run against each backend behind the `Storage` port.

The memory store is the reference; the others must behave alike, counters included. Every
operation is handed its time, so leases run out when a test says, without sleeping.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import time
import uuid
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from taskfarm.domain import (
    FULL_PROGRESS,
    Conflict,
    Run,
    RunCounters,
    RunNotFound,
    RunPolicy,
    Task,
    TaskChange,
    TaskNotFound,
    TaskState,
    UserNotFound,
    Wanted,
    Worker,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.domain.policy import MAX_ATTEMPTS, MAX_LEASE_SECONDS
from taskfarm.ports import Storage
from tests.integration.conftest import StorageFactory
from tests.stateful import store_machine

WAITING, COMPUTING, DONE = TaskState.WAITING, TaskState.COMPUTING, TaskState.DONE
FAILED = TaskState.FAILED
HALF = FULL_PROGRESS // 2
NOW = dt.datetime(2024, 5, 17, 12, 30, 15, 250_000, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)
LEASED = RunPolicy(lease_seconds=30)
MICROSECOND = dt.timedelta(microseconds=1)


def new_run(storage: Storage, num_tasks: int, policy: RunPolicy | None = None) -> Run:
    return storage.runs.create_run(uuid.uuid4().hex, num_tasks, policy or RunPolicy())


def claim(
    storage: Storage, run: Run, worker: str = "w", count: int = 1, now: dt.datetime = NOW
) -> list[int]:
    """The indices one claim of up to `count` tasks hands out."""
    return [task.index for task in storage.runs.claim(run.uuid, worker, now, count)]


def recount(storage: Storage, run: Run) -> RunCounters:
    """The counters from scratch, over every task of a (small) run."""
    return RunCounters.of(storage.runs.get_task(run.uuid, i) for i in range(run.num_tasks))


def counters_of(storage: Storage, run: Run) -> RunCounters:
    return storage.runs.get_run(run.uuid).counters


def claimed_indices(storage: Storage, run: Run, count: int, worker: str = "w") -> list[int | None]:
    claimed = [storage.runs.claim(run.uuid, worker, NOW, 1) for _ in range(count)]
    return [tasks[0].index if tasks else None for tasks in claimed]


def put(
    storage: Storage,
    run: Run,
    index: int,
    progress: int | None = None,
    state: TaskState | None = None,
    *,
    by: str | None = None,
    now: dt.datetime = NOW,
) -> Task:
    change = TaskChange(progress=progress, state=state)
    return storage.runs.update_task(run.uuid, index, change, now, by)


def expire(storage: Storage, now: dt.datetime) -> int:
    return storage.runs.expire_leases(now)


# Runs


def test_a_new_run_has_every_task_waiting_and_no_progress(storage: Storage) -> None:
    run = storage.runs.create_run("run-a", 7, RunPolicy())
    assert (run.uuid, run.num_tasks, run.frontier, run.policy) == ("run-a", 7, 0, RunPolicy())
    assert (run.num_waiting, run.num_computing, run.num_done, run.num_failed) == (7, 0, 0, 0)
    assert run.percent_done == 0.0
    assert storage.runs.get_run("run-a") == run


def test_runs_are_listed_in_the_order_they_were_created(storage: Storage) -> None:
    created = [storage.runs.create_run(name, 3, RunPolicy()) for name in ["c", "a", "b"]]
    assert list(storage.runs.list_runs()) == created
    assert len({run.id for run in created}) == 3


def test_a_run_of_a_billion_tasks_is_created_and_used_at_once(storage: Storage) -> None:
    started = time.perf_counter()
    run = new_run(storage, 10**9)
    last = 10**9 - 1
    assert storage.runs.get_run(run.uuid).num_waiting == 10**9
    assert storage.runs.claim(run.uuid, "w", NOW, 1) == [Task(0, COMPUTING, 0, "w", 1)]
    assert put(storage, run, last, FULL_PROGRESS, DONE) == Task(last, DONE, FULL_PROGRESS)
    assert storage.runs.get_task(run.uuid, last - 1) == Task.untouched(last - 1)
    storage.runs.restart(run.uuid, everything=True)
    assert storage.runs.get_run(run.uuid).num_waiting == 10**9
    storage.runs.delete_run(run.uuid)
    assert time.perf_counter() - started < 2.0


def test_a_deleted_run_is_gone_with_its_tasks(storage: Storage) -> None:
    run = storage.runs.create_run("doomed", 4, LEASED)
    claimed_indices(storage, run, 2)
    put(storage, run, 3, FULL_PROGRESS, DONE)
    other = new_run(storage, 2)

    storage.runs.delete_run("doomed")

    with pytest.raises(RunNotFound):
        storage.runs.get_run("doomed")
    assert list(storage.runs.list_runs()) == [other]
    reborn = storage.runs.create_run("doomed", 4, RunPolicy())
    assert reborn.policy == RunPolicy()
    assert reborn.counters == RunCounters()
    assert [storage.runs.get_task("doomed", i) for i in range(4)] == [
        Task.untouched(i) for i in range(4)
    ]
    assert claimed_indices(storage, reborn, 1) == [0]


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.runs.get_run("nope"),
        lambda s: s.runs.delete_run("nope"),
        lambda s: s.runs.claim("nope", "w", NOW, 3),
        lambda s: s.runs.claim_each("nope", [Wanted("w", 1), Wanted("v", 2)], NOW),
        lambda s: s.runs.get_task("nope", 0),
        lambda s: s.runs.update_task("nope", 0, TaskChange(state=DONE), NOW),
        lambda s: s.runs.update_task("nope", 0, TaskChange(), NOW, "w"),
        lambda s: s.runs.restart("nope", everything=False),
        lambda s: s.runs.holders("nope"),
        lambda s: s.runs.requeued_tasks("nope", 10),
        lambda s: s.runs.failed_tasks("nope", 10),
    ],
    ids=[
        "get_run",
        "delete_run",
        "claim",
        "claim_each",
        "get_task",
        "update_task",
        "heartbeat",
        "restart",
        "holders",
        "requeued_tasks",
        "failed_tasks",
    ],
)
def test_every_operation_on_an_unknown_run_raises_run_not_found(
    storage: Storage, operation: Callable[[Storage], object]
) -> None:
    new_run(storage, 3)
    with pytest.raises(RunNotFound):
        operation(storage)


# Claims


def test_claims_hand_out_tasks_in_index_order_then_none(storage: Storage) -> None:
    run = new_run(storage, 3)
    assert claimed_indices(storage, run, 5) == [0, 1, 2, None, None]
    assert storage.runs.get_run(run.uuid).frontier == 3


def test_a_claimed_task_is_computing_for_its_worker(storage: Storage) -> None:
    run = new_run(storage, 2)
    [claimed] = storage.runs.claim(run.uuid, "worker-1", NOW, 1)
    assert claimed == Task(0, COMPUTING, 0, "worker-1", attempts=1, lease_expires=None)
    assert storage.runs.get_task(run.uuid, 0) == claimed


def test_requeued_tasks_go_out_first_lowest_index_first(storage: Storage) -> None:
    run = new_run(storage, 10)
    claimed_indices(storage, run, 5)
    put(storage, run, 3, state=WAITING)
    put(storage, run, 1, state=WAITING)
    assert claimed_indices(storage, run, 3) == [1, 3, 5]


def test_a_requeued_task_keeps_its_progress_for_its_next_worker(storage: Storage) -> None:
    run = new_run(storage, 2)
    claim(storage, run, "first")
    put(storage, run, 0, HALF, WAITING)
    assert storage.runs.claim(run.uuid, "second", NOW, 1) == [Task(0, COMPUTING, HALF, "second", 2)]


def test_claims_skip_tasks_written_out_of_order(storage: Storage) -> None:
    run = new_run(storage, 6)
    put(storage, run, 1, FULL_PROGRESS, DONE)
    put(storage, run, 2, HALF, COMPUTING)
    put(storage, run, 5, FULL_PROGRESS, DONE)
    assert claimed_indices(storage, run, 4) == [0, 3, 4, None]


def test_a_batch_claim_skips_tasks_written_out_of_order_and_counts_only_its_own(
    storage: Storage,
) -> None:
    run = new_run(storage, 8)
    put(storage, run, 1, FULL_PROGRESS, DONE)
    put(storage, run, 2, HALF, COMPUTING)

    claimed = storage.runs.claim(run.uuid, "w", NOW, 4)

    assert [task.index for task in claimed] == [0, 3, 4, 5]
    counters = storage.runs.get_run(run.uuid).counters
    assert (counters.computing, counters.done) == (5, 1)
    assert [task.index for task in storage.runs.claim(run.uuid, "w", NOW, 4)] == [6, 7]


def test_a_waiting_task_written_past_the_frontier_is_requeued(storage: Storage) -> None:
    run = new_run(storage, 6)
    put(storage, run, 4, HALF)
    assert claimed_indices(storage, run, 7) == [4, 0, 1, 2, 3, 5, None]


def test_claims_return_none_once_every_task_is_done(storage: Storage) -> None:
    run = new_run(storage, 2)
    for index in claimed_indices(storage, run, 2):
        assert index is not None
        put(storage, run, index, FULL_PROGRESS, DONE)
    assert storage.runs.claim(run.uuid, "w", NOW, 5) == []
    assert (
        storage.runs.get_run(run.uuid).num_done,
        storage.runs.get_run(run.uuid).percent_done,
    ) == (2, 100.0)


# Tasks


def test_an_untouched_task_is_waiting_without_progress_or_worker(storage: Storage) -> None:
    run = new_run(storage, 5)
    assert storage.runs.get_task(run.uuid, 4) == Task(4, WAITING, 0, None)


@pytest.mark.parametrize("index", [-1, 5, 10**12])
def test_an_index_outside_the_run_is_not_found(storage: Storage, index: int) -> None:
    run = new_run(storage, 5)
    with pytest.raises(TaskNotFound):
        storage.runs.get_task(run.uuid, index)
    with pytest.raises(TaskNotFound):
        put(storage, run, index, state=DONE)
    assert counters_of(storage, run) == RunCounters()


def test_an_update_changes_only_what_it_names(storage: Storage) -> None:
    run = new_run(storage, 3)
    claim(storage, run)
    assert put(storage, run, 0, progress=HALF) == Task(0, COMPUTING, HALF, "w", 1)
    assert put(storage, run, 0, state=DONE) == Task(0, DONE, HALF, "w", 1)
    assert storage.runs.get_task(run.uuid, 0) == Task(0, DONE, HALF, "w", 1)


def test_a_task_set_back_to_waiting_belongs_to_no_worker(storage: Storage) -> None:
    run = new_run(storage, 3)
    claim(storage, run)
    assert put(storage, run, 0, HALF, WAITING) == Task(0, WAITING, HALF, None, 1)
    assert storage.runs.get_task(run.uuid, 0).worker is None


def test_an_update_of_an_untouched_task_stores_it(storage: Storage) -> None:
    run = new_run(storage, 4)
    assert put(storage, run, 2, HALF, COMPUTING) == Task(2, COMPUTING, HALF, None)
    assert storage.runs.get_task(run.uuid, 2) == Task(2, COMPUTING, HALF, None)
    assert storage.runs.get_run(run.uuid).frontier == 0


# Counters


def test_counters_equal_a_recount_after_every_kind_of_operation(storage: Storage) -> None:
    run = new_run(storage, 8)
    operations: list[Callable[[], object]] = [
        lambda: claimed_indices(storage, run, 3),
        lambda: put(storage, run, 0, HALF),
        lambda: put(storage, run, 1, FULL_PROGRESS, DONE),
        lambda: put(storage, run, 6, FULL_PROGRESS, DONE),
        lambda: put(storage, run, 7, HALF // 3, COMPUTING),
        lambda: put(storage, run, 2, HALF, WAITING),
        lambda: put(storage, run, 1, FULL_PROGRESS, DONE),
        lambda: claimed_indices(storage, run, 2),
        lambda: put(storage, run, 3, FULL_PROGRESS, COMPUTING),
        lambda: storage.runs.restart(run.uuid, everything=False),
        lambda: claimed_indices(storage, run, 4),
        lambda: put(storage, run, 5, 0, DONE),
        lambda: storage.runs.restart(run.uuid, everything=True),
        lambda: claimed_indices(storage, run, 9),
    ]
    for operation in operations:
        operation()
        assert counters_of(storage, run) == recount(storage, run)
    assert counters_of(storage, run) != RunCounters()


def test_counters_sum_the_progress_of_every_task(storage: Storage) -> None:
    run = new_run(storage, 4)
    put(storage, run, 0, FULL_PROGRESS, DONE)
    put(storage, run, 3, HALF)
    assert storage.runs.get_run(run.uuid).percent_done == pytest.approx(37.5)


def test_counters_of_one_run_ignore_the_tasks_of_another(storage: Storage) -> None:
    run, other = new_run(storage, 3), new_run(storage, 3)
    claimed_indices(storage, other, 2)
    put(storage, other, 2, FULL_PROGRESS, DONE)
    storage.runs.restart(other.uuid, everything=True)
    assert counters_of(storage, run) == RunCounters()
    assert claimed_indices(storage, run, 1) == [0]


# Restarts


def test_a_restart_hands_back_unfinished_tasks_with_their_progress(storage: Storage) -> None:
    run = new_run(storage, 6)
    claimed_indices(storage, run, 4)  # 0 to 3, computing
    put(storage, run, 1, HALF)
    put(storage, run, 2, FULL_PROGRESS, DONE)
    put(storage, run, 3, FULL_PROGRESS)  # finished but not yet marked done
    put(storage, run, 5, HALF, DONE)  # marked done without all its progress

    storage.runs.restart(run.uuid, everything=False)

    assert [storage.runs.get_task(run.uuid, i) for i in range(6)] == [
        Task(0, WAITING, 0),
        Task(1, WAITING, HALF),
        Task(2, DONE, FULL_PROGRESS, "w", 1),
        Task(3, COMPUTING, FULL_PROGRESS, "w", 1),
        Task(4, WAITING, 0),
        Task(5, WAITING, HALF),
    ]
    assert counters_of(storage, run) == RunCounters(
        computing=1, done=1, progress=2 * FULL_PROGRESS + 2 * HALF
    )


def test_a_restart_of_everything_starts_every_task_afresh(storage: Storage) -> None:
    run = new_run(storage, 5)
    claimed_indices(storage, run, 3)
    put(storage, run, 0, FULL_PROGRESS, DONE)
    put(storage, run, 1, HALF)
    put(storage, run, 4, HALF, WAITING)

    storage.runs.restart(run.uuid, everything=True)

    assert [storage.runs.get_task(run.uuid, i) for i in range(5)] == [
        Task.untouched(i) for i in range(5)
    ]
    assert storage.runs.get_run(run.uuid).num_waiting == 5
    assert counters_of(storage, run) == RunCounters()


def test_after_a_restart_claims_take_restarted_tasks_then_go_on_past_the_frontier(
    storage: Storage,
) -> None:
    run = new_run(storage, 6)
    claimed_indices(storage, run, 3)
    put(storage, run, 1, FULL_PROGRESS, DONE)
    storage.runs.restart(run.uuid, everything=False)
    assert claimed_indices(storage, run, 5) == [0, 2, 3, 4, 5]


# Batch claims


def test_a_batch_claim_hands_out_up_to_its_count_in_index_order(storage: Storage) -> None:
    run = new_run(storage, 7)
    assert [claim(storage, run, count=3) for _ in range(4)] == [[0, 1, 2], [3, 4, 5], [6], []]
    assert storage.runs.get_run(run.uuid).frontier == 7
    assert storage.runs.get_run(run.uuid).num_computing == 7


def test_a_batch_claim_takes_requeued_tasks_first_then_goes_on_past_the_frontier(
    storage: Storage,
) -> None:
    run = new_run(storage, 10)
    claim(storage, run, count=4)
    put(storage, run, 2, HALF, WAITING)
    put(storage, run, 0, state=WAITING)
    put(storage, run, 8, HALF)  # written out of order: requeued too

    claimed = storage.runs.claim(run.uuid, "second", NOW, 5)

    assert [task.index for task in claimed] == [0, 2, 8, 4, 5]
    assert [(task.progress, task.attempts) for task in claimed] == [
        (0, 2),
        (HALF, 2),
        (HALF, 1),
        (0, 1),
        (0, 1),
    ]
    assert claimed == [storage.runs.get_task(run.uuid, task.index) for task in claimed]
    assert claim(storage, run, count=10) == [6, 7, 9]


def test_batch_claims_hand_each_task_to_exactly_one_worker(storage: Storage) -> None:
    run = new_run(storage, 23)
    holders: dict[int, str] = {}
    for number, count in zip(itertools.count(), itertools.cycle([1, 4, 2, 7, 3])):
        worker = f"worker-{number % 3}"
        claimed = storage.runs.claim(run.uuid, worker, NOW, count)
        if not claimed:
            break
        assert len(claimed) == min(count, 23 - len(holders))
        for task in claimed:
            assert task.index not in holders
            holders[task.index] = worker

    assert sorted(holders) == list(range(23))
    assert {i: storage.runs.get_task(run.uuid, i).worker for i in range(23)} == holders
    assert dict(storage.runs.tasks_held()) == collections.Counter(holders.values())
    assert counters_of(storage, run) == recount(storage, run)


def test_claims_made_together_get_what_claims_one_after_another_would(storage: Storage) -> None:
    wanted = [Wanted("a", 2), Wanted("b", 1), Wanted("a", 3), Wanted("c", 4)]
    apart, together = new_run(storage, 12), new_run(storage, 12)
    for run in (apart, together):
        claim(storage, run, count=5)
        put(storage, run, 3, HALF, WAITING)
        put(storage, run, 1, state=WAITING)
        put(storage, run, 9, HALF)  # written out of order: requeued too
    one_by_one = [storage.runs.claim(apart.uuid, w.worker_uuid, NOW, w.count) for w in wanted]

    each = storage.runs.claim_each(together.uuid, wanted, NOW)

    assert [[task.index for task in tasks] for tasks in each] == [
        [1, 3],
        [9],
        [5, 6, 7],
        [8, 10, 11],
    ]
    assert each == one_by_one
    assert [storage.runs.get_task(together.uuid, i) for i in range(12)] == [
        storage.runs.get_task(apart.uuid, i) for i in range(12)
    ]
    assert counters_of(storage, together) == counters_of(storage, apart)
    assert counters_of(storage, together) == recount(storage, together)
    assert storage.runs.get_run(together.uuid).frontier == 12


def test_claims_made_together_past_the_last_task_get_nothing(storage: Storage) -> None:
    run = new_run(storage, 3)
    each = storage.runs.claim_each(run.uuid, [Wanted("a", 2), Wanted("b", 2), Wanted("c", 1)], NOW)
    assert [[task.index for task in tasks] for tasks in each] == [[0, 1], [2], []]


def test_claims_awaited_on_an_event_loop_get_what_claims_would(storage: Storage) -> None:
    apart, awaited = new_run(storage, 8), new_run(storage, 8)
    for run in (apart, awaited):
        claim(storage, run, count=3)
        put(storage, run, 1, HALF, WAITING)
    wanted = [Wanted("a", 2), Wanted("b", 1)]
    expected = storage.runs.claim_each(apart.uuid, wanted, NOW)

    async def claim_on_a_loop(uuid: str) -> list[list[Task]]:
        try:
            return await storage.runs.claim_each_async(uuid, wanted, NOW)
        finally:
            await storage.leave_loop()

    # Each event loop has connections of its own, closed as it is left.
    first = asyncio.run(claim_on_a_loop(awaited.uuid))
    second = asyncio.run(claim_on_a_loop(awaited.uuid))
    with pytest.raises(RunNotFound):
        asyncio.run(claim_on_a_loop("nope"))

    assert first == expected
    assert [[task.index for task in tasks] for tasks in second] == [[5, 6], [7]]
    assert counters_of(storage, awaited) == recount(storage, awaited)


def test_claims_awaited_on_an_event_loop_step_over_tasks_stored_past_the_frontier(
    storage: Storage,
) -> None:
    run = new_run(storage, 8)
    claim(storage, run, count=2)

    async def claim_on_a_loop(*wanted: Wanted) -> list[list[int]]:
        try:
            each = await storage.runs.claim_each_async(run.uuid, wanted, NOW)
            return [[task.index for task in tasks] for tasks in each]
        finally:
            await storage.leave_loop()

    put(storage, run, 3, HALF, DONE)  # stored out of order, past the frontier (2)
    assert asyncio.run(claim_on_a_loop(Wanted("a", 2), Wanted("b", 2))) == [[2, 4], [5, 6]]
    put(storage, run, 1, HALF, WAITING)  # requeued
    assert asyncio.run(claim_on_a_loop(Wanted("c", 1), Wanted("d", 1))) == [[1], [7]]
    assert asyncio.run(claim_on_a_loop(Wanted("e", 1))) == [[]]
    assert counters_of(storage, run) == recount(storage, run)


# Leases


def test_a_claim_leases_its_tasks_for_the_length_of_the_run_lease(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    claimed = storage.runs.claim(run.uuid, "w", NOW, 2)
    assert claimed == [Task(i, COMPUTING, 0, "w", 1, NOW + LEASE) for i in range(2)]
    assert [storage.runs.get_task(run.uuid, i) for i in range(2)] == claimed


def test_a_lease_keeps_the_microseconds_of_the_time_it_was_taken(storage: Storage) -> None:
    run = new_run(storage, 1, RunPolicy(lease_seconds=7))
    now = dt.datetime(2031, 12, 31, 23, 59, 58, 987_654, tzinfo=dt.UTC)
    [claimed] = storage.runs.claim(run.uuid, "w", now, 1)
    end = dt.datetime(2032, 1, 1, 0, 0, 5, 987_654, tzinfo=dt.UTC)
    assert claimed.lease_expires == storage.runs.get_task(run.uuid, 0).lease_expires == end
    assert expire(storage, end - MICROSECOND) == 0
    assert expire(storage, end) == 1


def test_a_claim_in_a_run_without_a_lease_is_never_expired(storage: Storage) -> None:
    run = new_run(storage, 2)
    claim(storage, run)
    assert storage.runs.get_task(run.uuid, 0).lease_expires is None
    assert expire(storage, NOW + dt.timedelta(days=3650)) == 0
    assert storage.runs.get_task(run.uuid, 0).state is COMPUTING


def test_a_lease_expires_at_its_end_not_a_microsecond_before(storage: Storage) -> None:
    run = new_run(storage, 2, LEASED)
    claim(storage, run)
    put(storage, run, 0, HALF)

    assert expire(storage, NOW + LEASE - MICROSECOND) == 0
    assert storage.runs.get_task(run.uuid, 0).state is COMPUTING
    assert expire(storage, NOW + LEASE) == 1

    assert storage.runs.get_task(run.uuid, 0) == Task(0, WAITING, HALF, None, 1, None)
    assert counters_of(storage, run) == RunCounters(progress=HALF)
    assert expire(storage, NOW + 2 * LEASE) == 0


@pytest.mark.parametrize(
    "change",
    [TaskChange(), TaskChange(progress=HALF), TaskChange(state=COMPUTING)],
    ids=["heartbeat", "progress", "computing"],
)
def test_an_update_of_a_computing_task_renews_its_lease_from_the_time_of_the_update(
    storage: Storage, change: TaskChange
) -> None:
    run = new_run(storage, 1, LEASED)
    claim(storage, run)
    later = NOW + dt.timedelta(seconds=20)

    renewed = storage.runs.update_task(run.uuid, 0, change, later, "w")

    assert renewed.lease_expires == later + LEASE
    assert storage.runs.get_task(run.uuid, 0) == renewed
    assert expire(storage, NOW + LEASE) == 0
    assert expire(storage, later + LEASE) == 1


@pytest.mark.parametrize("state", [DONE, WAITING, FAILED])
def test_a_task_that_stops_computing_has_no_lease_left_to_expire(
    storage: Storage, state: TaskState
) -> None:
    run = new_run(storage, 1, LEASED)
    claim(storage, run)

    changed = put(storage, run, 0, state=state, by="w")

    assert (changed.state, changed.lease_expires) == (state, None)
    assert changed.worker == ("w" if state is DONE else None)
    assert expire(storage, NOW + 2 * LEASE) == 0
    assert storage.runs.get_task(run.uuid, 0) == changed


def test_an_expired_task_goes_out_again_first_with_its_progress_and_one_more_attempt(
    storage: Storage,
) -> None:
    run = new_run(storage, 5, LEASED)
    assert claim(storage, run, "silent", count=3) == [0, 1, 2]
    put(storage, run, 1, HALF, by="silent")
    put(storage, run, 0, by="silent", now=NOW + dt.timedelta(seconds=10))
    put(storage, run, 2, by="silent", now=NOW + dt.timedelta(seconds=10))

    assert expire(storage, NOW + LEASE) == 1

    later = NOW + LEASE + dt.timedelta(seconds=1)
    [again] = storage.runs.claim(run.uuid, "next", later, 1)
    assert again == Task(1, COMPUTING, HALF, "next", 2, later + LEASE)
    assert claim(storage, run, "next", count=5, now=later) == [3, 4]


def test_expiry_goes_through_every_run_and_hands_each_task_back_once(storage: Storage) -> None:
    short = new_run(storage, 3, RunPolicy(lease_seconds=10))
    long = new_run(storage, 3, RunPolicy(lease_seconds=100))
    endless = new_run(storage, 3)
    for run in (short, long, endless):
        claim(storage, run, count=2)

    assert expire(storage, NOW + dt.timedelta(seconds=50)) == 2
    assert expire(storage, NOW + dt.timedelta(seconds=50)) == 0
    assert expire(storage, NOW + dt.timedelta(seconds=100)) == 2
    assert [counters_of(storage, run).computing for run in (short, long, endless)] == [0, 0, 2]
    for run in (short, long, endless):
        assert counters_of(storage, run) == recount(storage, run)


def test_a_task_fails_when_its_last_allowed_lease_runs_out(storage: Storage) -> None:
    run = new_run(storage, 3, RunPolicy(lease_seconds=30, max_attempts=2))
    now = NOW
    for attempt, state in [(1, WAITING), (2, FAILED)]:
        [task] = storage.runs.claim(run.uuid, f"worker-{attempt}", now, 1)
        assert (task.index, task.attempts) == (0, attempt)
        put(storage, run, 0, HALF * attempt // 2, by=f"worker-{attempt}", now=now)
        now += LEASE
        assert expire(storage, now) == 1
        assert storage.runs.get_task(run.uuid, 0).state is state

    assert storage.runs.get_task(run.uuid, 0) == Task(0, FAILED, HALF, None, 2, None)
    failed = storage.runs.get_run(run.uuid)
    assert (failed.num_failed, failed.num_waiting, failed.num_computing) == (1, 2, 0)
    assert failed.counters == recount(storage, run) == RunCounters(failed=1, progress=HALF)


def test_a_failed_task_is_never_handed_out_again(storage: Storage) -> None:
    run = new_run(storage, 2, RunPolicy(lease_seconds=30, max_attempts=1))
    claim(storage, run)
    expire(storage, NOW + LEASE)

    assert claim(storage, run, count=3, now=NOW + LEASE) == [1]
    assert claim(storage, run, count=3, now=NOW + LEASE) == []
    assert storage.runs.get_task(run.uuid, 0).state is FAILED


def test_a_task_set_failed_by_a_person_is_counted_failed(storage: Storage) -> None:
    run = new_run(storage, 3)
    claim(storage, run)
    assert put(storage, run, 0, state=FAILED) == Task(0, FAILED, 0, None, 1, None)
    assert put(storage, run, 2, HALF, FAILED) == Task(2, FAILED, HALF, None, 0, None)
    assert counters_of(storage, run) == RunCounters(failed=2, progress=HALF)
    assert claim(storage, run, count=3) == [1]


@pytest.mark.parametrize("everything", [False, True])
def test_a_restart_brings_failed_tasks_back_with_every_attempt_again(
    storage: Storage, everything: bool
) -> None:
    run = new_run(storage, 2, RunPolicy(lease_seconds=30, max_attempts=1))
    claim(storage, run, count=2)
    put(storage, run, 0, FULL_PROGRESS, by="w")  # all its progress, but never said it was done
    expire(storage, NOW + LEASE)
    assert counters_of(storage, run).failed == 2

    storage.runs.restart(run.uuid, everything=everything)

    progress = 0 if everything else FULL_PROGRESS
    assert [storage.runs.get_task(run.uuid, i) for i in range(2)] == [
        Task(0, WAITING, progress, None, 0, None),
        Task(1, WAITING, 0, None, 0, None),
    ]
    assert counters_of(storage, run) == RunCounters(progress=progress)
    later = NOW + 2 * LEASE
    claimed = storage.runs.claim(run.uuid, "again", later, 2)
    assert [(task.index, task.attempts) for task in claimed] == [(0, 1), (1, 1)]


def test_a_restart_resets_the_attempts_and_leases_of_unfinished_tasks(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    claim(storage, run, count=3)
    put(storage, run, 1, FULL_PROGRESS, DONE, by="w")
    expire(storage, NOW + LEASE)
    claim(storage, run, count=1)  # task 0, its second attempt

    storage.runs.restart(run.uuid, everything=False)

    assert [storage.runs.get_task(run.uuid, i) for i in range(3)] == [
        Task(0, WAITING, 0, None, 0, None),
        Task(1, DONE, FULL_PROGRESS, "w", 1, None),
        Task(2, WAITING, 0, None, 0, None),
    ]
    assert expire(storage, NOW + 10 * LEASE) == 0


# Workers whose task was taken from them


def _taken_over(storage: Storage) -> Run:
    """A run whose task 0 went to "zombie", ran out of lease, and went to "successor"."""
    run = new_run(storage, 2, LEASED)
    claim(storage, run, "zombie")
    expire(storage, NOW + LEASE)
    assert claim(storage, run, "successor", now=NOW + LEASE) == [0]
    return run


@pytest.mark.parametrize(
    "change",
    [
        TaskChange(),
        TaskChange(progress=HALF),
        TaskChange(progress=FULL_PROGRESS, state=DONE),
        TaskChange(state=WAITING),
        TaskChange(state=FAILED),
    ],
    ids=["heartbeat", "progress", "done", "waiting", "failed"],
)
def test_a_worker_whose_task_went_to_another_is_refused_and_nothing_changes(
    storage: Storage, change: TaskChange
) -> None:
    run = _taken_over(storage)
    task, before = storage.runs.get_task(run.uuid, 0), storage.runs.get_run(run.uuid)

    with pytest.raises(Conflict):
        storage.runs.update_task(run.uuid, 0, change, NOW + 2 * LEASE, "zombie")

    assert storage.runs.get_task(run.uuid, 0) == task
    assert storage.runs.get_run(run.uuid) == before
    assert dict(storage.runs.tasks_held()) == {"successor": 1}


def test_a_worker_is_refused_a_task_another_finished(storage: Storage) -> None:
    run = _taken_over(storage)
    put(storage, run, 0, FULL_PROGRESS, DONE, by="successor")

    with pytest.raises(Conflict):
        put(storage, run, 0, HALF, by="zombie")

    assert storage.runs.get_task(run.uuid, 0) == Task(0, DONE, FULL_PROGRESS, "successor", 2)


def test_the_holder_and_a_person_may_change_a_task_that_was_taken_over(storage: Storage) -> None:
    run = _taken_over(storage)
    later = NOW + LEASE + dt.timedelta(seconds=5)
    assert put(storage, run, 0, HALF, by="successor", now=later).lease_expires == later + LEASE
    assert put(storage, run, 0, FULL_PROGRESS, DONE) == Task(0, DONE, FULL_PROGRESS, "successor", 2)


def test_a_worker_may_still_change_its_task_while_nobody_took_it(storage: Storage) -> None:
    run = new_run(storage, 1, LEASED)
    claim(storage, run, "late")
    expire(storage, NOW + LEASE)

    assert put(storage, run, 0, HALF, by="late") == Task(0, WAITING, HALF, None, 1, None)
    assert put(storage, run, 0, FULL_PROGRESS, DONE, by="late") == Task(
        0, DONE, FULL_PROGRESS, "late", 1, None
    )
    assert counters_of(storage, run) == RunCounters(done=1, progress=FULL_PROGRESS)


def test_a_task_finished_while_nobody_held_it_refuses_any_other_worker(storage: Storage) -> None:
    # The lease of "first" runs out; "second" claims the task and its lease runs out too.
    run = new_run(storage, 1, LEASED)
    claim(storage, run, "first")
    expire(storage, NOW + LEASE)
    claim(storage, run, "second", now=NOW + LEASE)
    expire(storage, NOW + 2 * LEASE)
    put(storage, run, 0, FULL_PROGRESS, DONE, by="first", now=NOW + 3 * LEASE)

    with pytest.raises(Conflict):
        put(storage, run, 0, FULL_PROGRESS, DONE, by="second", now=NOW + 3 * LEASE)

    assert storage.runs.get_task(run.uuid, 0) == Task(0, DONE, FULL_PROGRESS, "first", 2, None)
    assert counters_of(storage, run) == RunCounters(done=1, progress=FULL_PROGRESS)


def test_a_worker_setting_computing_a_task_nobody_holds_takes_it(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    taken = put(storage, run, 2, state=COMPUTING, by="w")
    assert taken == Task(2, COMPUTING, 0, "w", 0, NOW + LEASE)
    assert dict(storage.runs.tasks_held()) == {"w": 1}


# Tasks held


def test_tasks_held_counts_the_computing_tasks_of_each_worker_over_every_run(
    storage: Storage,
) -> None:
    first, second = new_run(storage, 5, LEASED), new_run(storage, 5)
    claim(storage, first, "busy", count=2)
    claim(storage, second, "busy")
    claim(storage, second, "finished")
    put(storage, second, 1, FULL_PROGRESS, DONE, by="finished")
    claim(storage, second, "gave-up")
    put(storage, second, 2, state=WAITING, by="gave-up")
    claim(storage, first, "silent", now=NOW - LEASE)
    expire(storage, NOW)

    assert dict(storage.runs.tasks_held()) == {"busy": 3}


def test_tasks_held_is_empty_when_nobody_computes_anything(storage: Storage) -> None:
    assert dict(storage.runs.tasks_held()) == {}
    run = new_run(storage, 2)
    put(storage, run, 0, state=COMPUTING)  # computing for nobody
    assert dict(storage.runs.tasks_held()) == {}


def test_tasks_of_a_deleted_run_are_held_by_nobody(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    claim(storage, run, count=3)
    storage.runs.delete_run(run.uuid)
    assert dict(storage.runs.tasks_held()) == {}
    assert expire(storage, NOW + LEASE) == 0


# A look at one run


def test_holders_count_the_computing_tasks_of_each_worker_in_that_run_only(
    storage: Storage,
) -> None:
    run, other = new_run(storage, 8, LEASED), new_run(storage, 5)
    claim(storage, run, "busy", count=2)
    claim(storage, other, "busy", count=3)
    claim(storage, run, "finished")
    put(storage, run, 2, FULL_PROGRESS, DONE, by="finished")
    claim(storage, run, "gave-up")
    put(storage, run, 3, state=WAITING, by="gave-up")
    claim(storage, run, "silent", now=NOW - LEASE)
    claim(storage, run, "late", count=2, now=NOW - LEASE / 2)
    put(storage, run, 7, state=COMPUTING)  # computing for nobody
    expire(storage, NOW)

    assert dict(storage.runs.holders(run.uuid)) == {"busy": 2, "late": 2}
    assert dict(storage.runs.holders(other.uuid)) == {"busy": 3}


def test_a_run_nobody_computes_has_no_holders(storage: Storage) -> None:
    run = new_run(storage, 3)
    assert dict(storage.runs.holders(run.uuid)) == {}
    claim(storage, run, count=3)
    storage.runs.restart(run.uuid, everything=True)
    assert dict(storage.runs.holders(run.uuid)) == {}


def test_requeued_tasks_are_those_handed_back_lowest_index_first_up_to_the_limit(
    storage: Storage,
) -> None:
    run = new_run(storage, 10, LEASED)
    claim(storage, run, "w", count=6)
    put(storage, run, 4, HALF, WAITING, by="w")
    put(storage, run, 1, state=WAITING, by="w")
    put(storage, run, 8, state=WAITING)  # written out of order: stored, and handed out first
    put(storage, run, 0, FULL_PROGRESS, DONE, by="w")
    claim(storage, run, "silent", now=NOW - LEASE)  # takes 1 again, and its lease runs out
    expire(storage, NOW)

    everything = [
        Task(1, WAITING, 0, None, 2, None),
        Task(4, WAITING, HALF, None, 1, None),
        Task(8, WAITING, 0, None, 0, None),
    ]
    assert list(storage.runs.requeued_tasks(run.uuid, 100)) == everything
    assert list(storage.runs.requeued_tasks(run.uuid, 2)) == everything[:2]
    assert list(storage.runs.requeued_tasks(run.uuid, 1)) == everything[:1]


def test_a_fresh_run_or_one_whose_requeued_tasks_went_out_again_has_none(
    storage: Storage,
) -> None:
    run = new_run(storage, 4)
    assert list(storage.runs.requeued_tasks(run.uuid, 10)) == []
    claim(storage, run, count=2)
    put(storage, run, 0, state=WAITING)
    claim(storage, run, "next")
    assert list(storage.runs.requeued_tasks(run.uuid, 10)) == []


def test_failed_tasks_are_listed_lowest_index_first_up_to_the_limit(storage: Storage) -> None:
    run = new_run(storage, 6, RunPolicy(lease_seconds=30, max_attempts=1))
    other = new_run(storage, 2)
    claim(storage, run, count=4)
    put(storage, run, 2, HALF, by="w")
    put(storage, run, 3, FULL_PROGRESS, DONE, by="w")
    expire(storage, NOW + LEASE)  # 0, 1 and 2 fail
    put(storage, run, 5, state=FAILED)  # a person gave up on a task nobody touched
    put(storage, other, 0, state=FAILED)

    everything = [
        Task(0, FAILED, 0, None, 1, None),
        Task(1, FAILED, 0, None, 1, None),
        Task(2, FAILED, HALF, None, 1, None),
        Task(5, FAILED, 0, None, 0, None),
    ]
    assert list(storage.runs.failed_tasks(run.uuid, 100)) == everything
    assert list(storage.runs.failed_tasks(run.uuid, 3)) == everything[:3]
    assert list(storage.runs.failed_tasks(other.uuid, 100)) == [Task(0, FAILED)]


def test_a_failed_task_finished_or_restarted_is_no_longer_listed_as_failed(
    storage: Storage,
) -> None:
    run = new_run(storage, 3)
    for index in range(3):
        put(storage, run, index, state=FAILED)
    put(storage, run, 1, FULL_PROGRESS, DONE)
    assert [task.index for task in storage.runs.failed_tasks(run.uuid, 10)] == [0, 2]

    storage.runs.restart(run.uuid, everything=False)

    assert list(storage.runs.failed_tasks(run.uuid, 10)) == []
    assert [task.index for task in storage.runs.requeued_tasks(run.uuid, 10)] == [0, 2]


def test_a_look_at_a_run_of_a_billion_tasks_reads_only_what_it_lists(storage: Storage) -> None:
    run = new_run(storage, 10**9, RunPolicy(lease_seconds=30, max_attempts=1))
    last = 10**9 - 1
    claim(storage, run, "w", count=3)
    put(storage, run, 1, state=WAITING, by="w")
    put(storage, run, last, state=FAILED)
    started = time.perf_counter()

    assert dict(storage.runs.holders(run.uuid)) == {"w": 2}
    assert [task.index for task in storage.runs.requeued_tasks(run.uuid, 100)] == [1]
    assert [task.index for task in storage.runs.failed_tasks(run.uuid, 100)] == [last]
    assert time.perf_counter() - started < 2.0


# Policies


@pytest.mark.parametrize(
    "policy",
    [
        RunPolicy(),
        RunPolicy(lease_seconds=1),
        RunPolicy(max_attempts=3),
        RunPolicy(lease_seconds=MAX_LEASE_SECONDS, max_attempts=MAX_ATTEMPTS),
    ],
    ids=["none", "lease", "attempts", "largest"],
)
def test_a_run_keeps_the_policy_it_was_created_with(storage: Storage, policy: RunPolicy) -> None:
    run = new_run(storage, 4, policy)
    claim(storage, run)
    assert run.policy == policy
    assert storage.runs.get_run(run.uuid).policy == policy
    assert [listed.policy for listed in storage.runs.list_runs()] == [policy]


# Any view of the store


def test_every_store_opened_on_one_database_sees_the_same_data(
    storage_factory: StorageFactory,
) -> None:
    first, second = storage_factory(), storage_factory()
    run = new_run(first, 3)
    claim(first, run)
    assert second.runs.claim(run.uuid, "w", NOW, 1) == [Task(1, COMPUTING, 0, "w", 1)]
    assert first.runs.get_run(run.uuid) == second.runs.get_run(run.uuid)
    assert dict(first.runs.tasks_held()) == dict(second.runs.tasks_held()) == {"w": 2}


def test_creating_the_schema_again_keeps_the_data(storage: Storage) -> None:
    run = new_run(storage, 3, RunPolicy(lease_seconds=30, max_attempts=2))
    [task] = storage.runs.claim(run.uuid, "w", NOW, 1)
    storage.create_schema()
    assert storage.runs.get_task(run.uuid, 0) == task
    assert storage.runs.get_run(run.uuid).policy == run.policy


# Workers


def test_a_registered_worker_is_stored_as_it_registered(storage: Storage) -> None:
    worker = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    assert (worker.uuid, worker.hostname, worker.pid, worker.started) == ("w-1", "node7", 4242, NOW)
    assert storage.workers.get_worker("w-1") == worker


def test_registering_the_same_worker_again_returns_it_unchanged(storage: Storage) -> None:
    first = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    again = storage.workers.register(
        WorkerRegistration("w-1", "node7", 4242), NOW + dt.timedelta(hours=1)
    )
    assert again == first
    assert again.started == NOW


@pytest.mark.parametrize(
    "registration",
    [WorkerRegistration("w-1", "node8", 4242), WorkerRegistration("w-1", "node7", 1)],
)
def test_a_known_uuid_with_another_hostname_or_pid_conflicts(
    storage: Storage, registration: WorkerRegistration
) -> None:
    storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    with pytest.raises(Conflict):
        storage.workers.register(registration, NOW)
    assert storage.workers.get_worker("w-1").hostname == "node7"


def test_distinct_workers_get_distinct_ids(storage: Storage) -> None:
    ids = {storage.workers.register(WorkerRegistration(f"w-{i}", "", i), NOW).id for i in range(3)}
    assert len(ids) == 3


def test_an_unknown_worker_is_not_found(storage: Storage) -> None:
    with pytest.raises(WorkerNotFound):
        storage.workers.get_worker("nobody")


def test_a_registered_worker_was_last_seen_when_it_registered(storage: Storage) -> None:
    worker = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    assert worker.last_seen == NOW


def test_a_worker_heard_from_is_last_seen_then(storage: Storage) -> None:
    registered = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    later = NOW + dt.timedelta(minutes=5, microseconds=1)

    seen = storage.workers.seen("w-1", later)

    assert seen == Worker(registered.id, "w-1", "node7", 4242, started=NOW, last_seen=later)
    assert storage.workers.get_worker("w-1") == seen


def test_registering_again_keeps_when_the_worker_was_last_seen(storage: Storage) -> None:
    registration = WorkerRegistration("w-1", "node7", 4242)
    storage.workers.register(registration, NOW)
    seen = storage.workers.seen("w-1", NOW + dt.timedelta(minutes=5))

    assert storage.workers.register(registration, NOW + dt.timedelta(minutes=9)) == seen


def test_an_unknown_worker_cannot_be_seen(storage: Storage) -> None:
    storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    with pytest.raises(WorkerNotFound):
        storage.workers.seen("nobody", NOW)
    assert [worker.uuid for worker in storage.workers.list_workers()] == ["w-1"]


def test_workers_are_listed_in_the_order_they_registered(storage: Storage) -> None:
    assert list(storage.workers.list_workers()) == []
    for number, name in enumerate(["w-c", "w-a", "w-b"]):
        storage.workers.register(WorkerRegistration(name, "node", number), NOW)
    storage.workers.seen("w-a", NOW + dt.timedelta(seconds=1))

    listed = list(storage.workers.list_workers())

    assert [worker.uuid for worker in listed] == ["w-c", "w-a", "w-b"]
    assert listed == [storage.workers.get_worker(worker.uuid) for worker in listed]


# Users


def test_an_added_user_is_stored_with_its_hash_and_stamp(storage: Storage) -> None:
    user = storage.users.add_user("ada", "hash-1", "stamp-1")
    assert (user.username, user.password_hash, user.token_stamp) == ("ada", "hash-1", "stamp-1")
    assert storage.users.get_user("ada") == user


def test_users_are_listed_in_the_order_they_were_added(storage: Storage) -> None:
    added = [storage.users.add_user(name, "h", "s") for name in ["zoe", "ada", "max"]]
    assert list(storage.users.list_users()) == added


def test_a_taken_username_conflicts(storage: Storage) -> None:
    storage.users.add_user("ada", "hash-1", "stamp-1")
    with pytest.raises(Conflict):
        storage.users.add_user("ada", "hash-2", "stamp-2")
    assert storage.users.get_user("ada").password_hash == "hash-1"


def test_setting_a_password_replaces_hash_and_stamp(storage: Storage) -> None:
    user = storage.users.add_user("ada", "hash-1", "stamp-1")
    storage.users.set_password("ada", "hash-2", "stamp-2")
    changed = storage.users.get_user("ada")
    assert (changed.id, changed.password_hash, changed.token_stamp) == (
        user.id,
        "hash-2",
        "stamp-2",
    )


def test_a_deleted_user_is_gone(storage: Storage) -> None:
    storage.users.add_user("ada", "h", "s")
    kept = storage.users.add_user("bob", "h", "s")
    storage.users.delete_user("ada")
    with pytest.raises(UserNotFound):
        storage.users.get_user("ada")
    assert list(storage.users.list_users()) == [kept]


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.users.get_user("nobody"),
        lambda s: s.users.delete_user("nobody"),
        lambda s: s.users.set_password("nobody", "h", "s"),
    ],
    ids=["get_user", "delete_user", "set_password"],
)
def test_every_operation_on_an_unknown_user_raises_user_not_found(
    storage: Storage, operation: Callable[[Storage], object]
) -> None:
    storage.users.add_user("somebody", "h", "s")
    with pytest.raises(UserNotFound):
        operation(storage)


# Keys


def test_the_signing_key_is_generated_once_and_kept(storage_factory: StorageFactory) -> None:
    keys = iter([b"first key", b"second key"])
    generated: list[bytes] = []

    def generate() -> bytes:
        generated.append(next(keys))
        return generated[-1]

    assert storage_factory().keys.signing_key(generate) == b"first key"
    assert storage_factory().keys.signing_key(generate) == b"first key"
    assert generated == [b"first key"]


# Against the model


def test_the_store_agrees_with_the_model_over_random_operations(
    storage_factory: StorageFactory,
) -> None:
    run_state_machine_as_test(
        store_machine(storage_factory.empty),
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
