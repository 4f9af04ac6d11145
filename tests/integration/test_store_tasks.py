"""What every store must do with single tasks: read, update, and refuse a worker whose task went
to another; against each backend behind the `Storage` port.
"""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.domain import (
    FULL_PROGRESS,
    Conflict,
    Run,
    RunCounters,
    RunNotFound,
    Task,
    TaskChange,
    TaskNotFound,
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
    counters_of,
    expire,
    new_run,
    put,
    recount,
)

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
    assert put(storage, run, 0, progress=HALF) == Task(0, COMPUTING, HALF, "w", 1, started=NOW)
    assert put(storage, run, 0, state=DONE) == Task(0, DONE, HALF, "w", 1, started=NOW)
    assert storage.runs.get_task(run.uuid, 0) == Task(0, DONE, HALF, "w", 1, started=NOW)


def test_a_task_set_back_to_waiting_belongs_to_no_worker(storage: Storage) -> None:
    run = new_run(storage, 3)
    claim(storage, run)
    # Handed back, it gives its attempt back.
    assert put(storage, run, 0, HALF, WAITING) == Task(0, WAITING, HALF, None, 0, started=NOW)
    assert storage.runs.get_task(run.uuid, 0).worker is None


def test_an_update_of_an_untouched_task_stores_it(storage: Storage) -> None:
    run = new_run(storage, 4)
    assert put(storage, run, 2, HALF, COMPUTING) == Task(2, COMPUTING, HALF, None)
    assert storage.runs.get_task(run.uuid, 2) == Task(2, COMPUTING, HALF, None)
    assert storage.runs.get_run(run.uuid).frontier == 0


# Workers whose task was taken from them


def _taken_over(storage: Storage) -> Run:
    """A run whose task 0 went to "zombie", ran out of lease, and went to "successor" at
    `NOW + LEASE`."""
    run = new_run(storage, 1, LEASED)
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

    assert storage.runs.get_task(run.uuid, 0) == Task(
        0, DONE, FULL_PROGRESS, "successor", 2, started=NOW + LEASE
    )


def test_the_holder_and_a_person_may_change_a_task_that_was_taken_over(storage: Storage) -> None:
    run = _taken_over(storage)
    later = NOW + LEASE + dt.timedelta(seconds=5)
    assert put(storage, run, 0, HALF, by="successor", now=later).lease_expires == later + LEASE
    assert put(storage, run, 0, FULL_PROGRESS, DONE) == Task(
        0, DONE, FULL_PROGRESS, "successor", 2, started=NOW + LEASE
    )


def test_a_worker_may_still_change_its_task_while_nobody_took_it(storage: Storage) -> None:
    run = new_run(storage, 1, LEASED)
    claim(storage, run, "late")
    expire(storage, NOW + LEASE)

    assert put(storage, run, 0, HALF, by="late") == Task(0, WAITING, HALF, None, 1, None, NOW)
    assert put(storage, run, 0, FULL_PROGRESS, DONE, by="late") == Task(
        0, DONE, FULL_PROGRESS, "late", 1, None, NOW
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

    assert storage.runs.get_task(run.uuid, 0) == Task(
        0, DONE, FULL_PROGRESS, "first", 2, None, started=NOW + LEASE
    )
    assert counters_of(storage, run) == RunCounters(done=1, progress=FULL_PROGRESS)


def test_a_worker_setting_computing_a_task_nobody_holds_takes_it(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    taken = put(storage, run, 2, state=COMPUTING, by="w")
    assert taken == Task(2, COMPUTING, 0, "w", 0, NOW + LEASE)
    assert dict(storage.runs.tasks_held()) == {"w": 1}


# Many tasks at once

FINISHED = TaskChange(progress=FULL_PROGRESS, state=DONE)


def test_a_batch_finishes_the_tasks_of_its_worker_and_names_those_it_refuses(
    storage: Storage,
) -> None:
    run = new_run(storage, 6, LEASED)
    assert claim(storage, run, "w", 2) == [0, 1]
    assert claim(storage, run, "other") == [2]

    refused = storage.runs.change_tasks(run.uuid, [1, 2, 4, 0], FINISHED, NOW + LEASE / 2, "w")

    assert refused == [2]
    assert [storage.runs.get_task(run.uuid, i) for i in (0, 1, 2, 4)] == [
        Task(0, DONE, FULL_PROGRESS, "w", 1, started=NOW),
        Task(1, DONE, FULL_PROGRESS, "w", 1, started=NOW),
        Task(2, COMPUTING, 0, "other", 1, NOW + LEASE, started=NOW),
        # Finished by the worker that says so, as a single update would.
        Task(4, DONE, FULL_PROGRESS, "w"),
    ]
    assert counters_of(storage, run) == recount(storage, run)
    assert counters_of(storage, run) == RunCounters(computing=1, done=3, progress=3 * FULL_PROGRESS)
    assert dict(storage.runs.tasks_held()) == {"other": 1}


@pytest.mark.parametrize("outside", [-1, 6, 10**12])
def test_a_batch_with_a_task_outside_the_run_changes_nothing(
    storage: Storage, outside: int
) -> None:
    run = new_run(storage, 6)
    claim(storage, run, "w", 2)
    before = [storage.runs.get_task(run.uuid, i) for i in range(6)]

    with pytest.raises(TaskNotFound):
        storage.runs.change_tasks(run.uuid, [0, outside, 1], FINISHED, NOW, "w")

    assert [storage.runs.get_task(run.uuid, i) for i in range(6)] == before
    assert counters_of(storage, run) == RunCounters(computing=2)


def test_a_batch_of_heartbeats_renews_the_computing_tasks_only(storage: Storage) -> None:
    run = new_run(storage, 4, LEASED)
    claim(storage, run, "w", 2)
    put(storage, run, 1, FULL_PROGRESS, DONE, by="w")
    later = NOW + LEASE / 2

    refused = storage.runs.change_tasks(run.uuid, [0, 1, 3], TaskChange(), later, "w")

    # A heartbeat of a finished task, or of one nobody claimed, has no lease to renew.
    assert refused == [1, 3]
    assert storage.runs.get_task(run.uuid, 0) == Task(0, COMPUTING, 0, "w", 1, later + LEASE, NOW)
    assert storage.runs.get_task(run.uuid, 3) == Task(3, WAITING, 0, None)
    assert counters_of(storage, run) == RunCounters(computing=1, done=1, progress=FULL_PROGRESS)


def test_a_batch_for_a_run_that_is_not_there_is_not_found(storage: Storage) -> None:
    with pytest.raises(RunNotFound):
        storage.runs.change_tasks("no-such-run", [0], FINISHED, NOW, "w")
