"""What every store lists of a run for people watching it: holders, requeued and failed tasks,
at a cost in proportion to what it lists.
"""

from __future__ import annotations

import time

from taskfarm.domain import (
    FULL_PROGRESS,
    RunPolicy,
    Task,
)
from taskfarm.ports import Storage
from tests.integration.store_contract import (
    COMPUTING,
    DONE,
    FAILED,
    HALF,
    LEASE,
    LEASED,
    NOW,
    WAITING,
    claim,
    expire,
    new_run,
    put,
)

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
        Task(1, WAITING, 0, None, 1, None, NOW - LEASE),
        Task(4, WAITING, HALF, None, 0, None, NOW),
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
        Task(0, FAILED, 0, None, 1, None, NOW),
        Task(1, FAILED, 0, None, 1, None, NOW),
        Task(2, FAILED, HALF, None, 1, None, NOW),
        Task(5, FAILED, 0, None, 0, None),
    ]
    listed = storage.runs.list_tasks(run.uuid, FAILED, -1, 100)
    assert (listed.tasks, listed.next_after) == (everything, None)
    cut = storage.runs.list_tasks(run.uuid, FAILED, -1, 3)
    assert (len(cut.reports), cut.tasks, cut.next_after) == (3, everything[:3], 2)
    in_other = storage.runs.list_tasks(other.uuid, FAILED, -1, 100)
    assert (in_other.tasks, in_other.next_after) == ([Task(0, FAILED)], None)


def test_a_failed_task_finished_or_restarted_is_no_longer_listed_as_failed(
    storage: Storage,
) -> None:
    run = new_run(storage, 3)
    for index in range(3):
        put(storage, run, index, state=FAILED)
    put(storage, run, 1, FULL_PROGRESS, DONE)
    listed = storage.runs.list_tasks(run.uuid, FAILED, -1, 10)
    assert ([task.index for task in listed.tasks], listed.next_after) == ([0, 2], None)

    storage.runs.restart(run.uuid, everything=False)

    assert storage.runs.list_tasks(run.uuid, FAILED, -1, 10).tasks == []
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
    assert [task.index for task in storage.runs.list_tasks(run.uuid, FAILED, -1, 100).tasks] == [
        last
    ]
    assert time.perf_counter() - started < 2.0
