"""What every store's one claim operation must do, alone and in batches, against each backend
behind the `Storage` port (the memory store is the reference).
"""

from __future__ import annotations

import asyncio
import collections
import itertools

import pytest

from taskfarm.domain import (
    FULL_PROGRESS,
    RunNotFound,
    RunPolicy,
    Task,
    Wanted,
)
from taskfarm.ports import Storage
from tests.claiming import claim_batch, claim_tasks
from tests.integration.store_contract import (
    COMPUTING,
    DONE,
    FAILED,
    HALF,
    NOW,
    WAITING,
    claim,
    claimed_indices,
    counters_of,
    new_run,
    put,
    recount,
)

# Claims


def test_claims_hand_out_tasks_in_index_order_then_none(storage: Storage) -> None:
    run = new_run(storage, 3)
    assert claimed_indices(storage, run, 5) == [0, 1, 2, None, None]
    assert storage.runs.get_run(run.uuid).frontier == 3


def test_a_claimed_task_is_computing_for_its_worker(storage: Storage) -> None:
    run = new_run(storage, 2)
    [claimed] = claim_tasks(storage, run.uuid, "worker-1", NOW, 1)
    assert claimed == Task(0, COMPUTING, 0, "worker-1", attempts=1, lease_expires=None, started=NOW)
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
    assert claim_tasks(storage, run.uuid, "second", NOW, 1) == [
        Task(0, COMPUTING, HALF, "second", 1, started=NOW)
    ]


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

    claimed = claim_tasks(storage, run.uuid, "w", NOW, 4)

    assert [task.index for task in claimed] == [0, 3, 4, 5]
    counters = storage.runs.get_run(run.uuid).counters
    assert (counters.computing, counters.done) == (5, 1)
    assert [task.index for task in claim_tasks(storage, run.uuid, "w", NOW, 4)] == [6, 7]


def test_a_waiting_task_written_past_the_frontier_is_requeued(storage: Storage) -> None:
    run = new_run(storage, 6)
    put(storage, run, 4, HALF)
    assert claimed_indices(storage, run, 7) == [4, 0, 1, 2, 3, 5, None]


def test_claims_return_none_once_every_task_is_done(storage: Storage) -> None:
    run = new_run(storage, 2)
    for index in claimed_indices(storage, run, 2):
        assert index is not None
        put(storage, run, index, FULL_PROGRESS, DONE)
    assert claim_tasks(storage, run.uuid, "w", NOW, 5) == []
    assert (
        storage.runs.get_run(run.uuid).num_done,
        storage.runs.get_run(run.uuid).percent_done,
    ) == (2, 100.0)


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

    claimed = claim_tasks(storage, run.uuid, "second", NOW, 5)

    assert [task.index for task in claimed] == [0, 2, 8, 4, 5]
    assert [(task.progress, task.attempts) for task in claimed] == [
        (0, 1),
        (HALF, 1),
        (HALF, 1),
        (0, 1),
        (0, 1),
    ]
    assert claimed == [storage.runs.get_task(run.uuid, task.index) for task in claimed]
    assert claim(storage, run, count=10) == [6, 7, 9]


def test_a_task_that_failed_goes_out_again_only_after_every_untouched_one(
    storage: Storage,
) -> None:
    run = new_run(storage, 5, RunPolicy(max_attempts=3))
    claim(storage, run, count=2)
    put(storage, run, 0, state=FAILED)  # retried: it waits behind the untouched tasks
    put(storage, run, 1, state=WAITING)  # handed back: it used no attempt, and goes first

    assert claimed_indices(storage, run, 6) == [1, 2, 3, 4, 0, None]
    assert storage.runs.get_task(run.uuid, 0).attempts == 2


def test_a_task_handed_back_after_a_failure_still_waits_behind_the_untouched_ones(
    storage: Storage,
) -> None:
    run = new_run(storage, 3, RunPolicy(max_attempts=3))
    claim(storage, run)
    put(storage, run, 0, state=FAILED)
    assert claim(storage, run, count=3) == [1, 2, 0]
    put(storage, run, 0, state=WAITING)  # gives back its second attempt, not its first
    put(storage, run, 1, state=WAITING)

    assert claim(storage, run, count=3) == [1, 0]
    assert storage.runs.get_task(run.uuid, 0).attempts == 2


def test_claims_made_together_reach_the_deferred_tasks_as_claims_in_turn_would(
    storage: Storage,
) -> None:
    wanted = [Wanted("a", 2), Wanted("b", 2), Wanted("c", 3), Wanted("d", 1)]
    apart, together = (new_run(storage, 7, RunPolicy(max_attempts=3)) for _ in range(2))
    for run in (apart, together):
        claim(storage, run, count=4)
        put(storage, run, 0, state=FAILED)
        put(storage, run, 2, state=FAILED)
        put(storage, run, 3, state=WAITING)
    one_by_one = [claim_tasks(storage, apart.uuid, w.worker_uuid, NOW, w.count) for w in wanted]

    each = claim_batch(storage, together.uuid, wanted, NOW)

    assert [[task.index for task in tasks] for tasks in each] == [[3, 4], [5, 6], [0, 2], []]
    assert each == one_by_one
    assert counters_of(storage, together) == counters_of(storage, apart)
    assert counters_of(storage, together) == recount(storage, together)


def test_batch_claims_hand_each_task_to_exactly_one_worker(storage: Storage) -> None:
    run = new_run(storage, 23)
    holders: dict[int, str] = {}
    for number, count in zip(itertools.count(), itertools.cycle([1, 4, 2, 7, 3])):
        worker = f"worker-{number % 3}"
        claimed = claim_tasks(storage, run.uuid, worker, NOW, count)
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
    one_by_one = [claim_tasks(storage, apart.uuid, w.worker_uuid, NOW, w.count) for w in wanted]

    each = claim_batch(storage, together.uuid, wanted, NOW)

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


def test_claims_made_together_step_over_a_task_stored_past_the_frontier_as_claims_in_turn_would(
    storage: Storage,
) -> None:
    wanted = [Wanted("a", 2), Wanted("b", 1), Wanted("c", 2)]
    apart, together = new_run(storage, 8), new_run(storage, 8)
    for run in (apart, together):
        put(storage, run, 1, FULL_PROGRESS, DONE)
        put(storage, run, 4, HALF, COMPUTING)
    one_by_one = [claim_tasks(storage, apart.uuid, w.worker_uuid, NOW, w.count) for w in wanted]

    each = claim_batch(storage, together.uuid, wanted, NOW)

    assert [[task.index for task in tasks] for tasks in each] == [[0, 2], [3], [5, 6]]
    assert each == one_by_one
    assert [storage.runs.get_task(together.uuid, i) for i in range(8)] == [
        storage.runs.get_task(apart.uuid, i) for i in range(8)
    ]
    assert counters_of(storage, together) == recount(storage, together)


def test_claims_made_together_past_the_last_task_get_nothing(storage: Storage) -> None:
    run = new_run(storage, 3)
    each = claim_batch(storage, run.uuid, [Wanted("a", 2), Wanted("b", 2), Wanted("c", 1)], NOW)
    assert [[task.index for task in tasks] for tasks in each] == [[0, 1], [2], []]


def test_claims_awaited_on_an_event_loop_get_what_claims_would(storage: Storage) -> None:
    apart, awaited = new_run(storage, 8), new_run(storage, 8)
    for run in (apart, awaited):
        claim(storage, run, count=3)
        put(storage, run, 1, HALF, WAITING)
    wanted = [Wanted("a", 2), Wanted("b", 1)]
    expected = claim_batch(storage, apart.uuid, wanted, NOW)

    async def claim_on_a_loop(uuid: str) -> list[list[Task]]:
        try:
            return await storage.runs.claim_batch(uuid, wanted, NOW)
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
            each = await storage.runs.claim_batch(run.uuid, wanted, NOW)
            return [[task.index for task in tasks] for tasks in each]
        finally:
            await storage.leave_loop()

    put(storage, run, 3, HALF, DONE)  # stored out of order, past the frontier (2)
    assert asyncio.run(claim_on_a_loop(Wanted("a", 2), Wanted("b", 2))) == [[2, 4], [5, 6]]
    put(storage, run, 1, HALF, WAITING)  # requeued
    assert asyncio.run(claim_on_a_loop(Wanted("c", 1), Wanted("d", 1))) == [[1], [7]]
    assert asyncio.run(claim_on_a_loop(Wanted("e", 1))) == [[]]
    assert counters_of(storage, run) == recount(storage, run)
