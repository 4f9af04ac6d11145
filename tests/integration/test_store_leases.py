"""Leases in every store: when they run out, what expiry hands back, and when a task fails;
every operation is handed its time, so leases run out when a test says, without sleeping.
"""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.domain import (
    FULL_PROGRESS,
    RunCounters,
    RunPolicy,
    Task,
    TaskChange,
    TaskState,
)
from taskfarm.ports import Storage
from tests.claiming import claim_tasks
from tests.integration.store_contract import (
    COMPUTING,
    DONE,
    FAILED,
    HALF,
    LEASE,
    LEASED,
    MICROSECOND,
    NOW,
    WAITING,
    claim,
    counters_of,
    expire,
    new_run,
    put,
    recount,
)

# Leases


def test_a_claim_leases_its_tasks_for_the_length_of_the_run_lease(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    claimed = claim_tasks(storage, run.uuid, "w", NOW, 2)
    assert claimed == [Task(i, COMPUTING, 0, "w", 1, NOW + LEASE, NOW) for i in range(2)]
    assert [storage.runs.get_task(run.uuid, i) for i in range(2)] == claimed


def test_a_lease_keeps_the_microseconds_of_the_time_it_was_taken(storage: Storage) -> None:
    run = new_run(storage, 1, RunPolicy(lease_seconds=7))
    now = dt.datetime(2031, 12, 31, 23, 59, 58, 987_654, tzinfo=dt.UTC)
    [claimed] = claim_tasks(storage, run.uuid, "w", now, 1)
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

    assert storage.runs.get_task(run.uuid, 0) == Task(0, WAITING, HALF, None, 1, None, NOW)
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


def test_an_expired_task_goes_out_again_after_the_untouched_ones_with_its_progress(
    storage: Storage,
) -> None:
    run = new_run(storage, 5, LEASED)
    assert claim(storage, run, "silent", count=3) == [0, 1, 2]
    put(storage, run, 1, HALF, by="silent")
    put(storage, run, 0, by="silent", now=NOW + dt.timedelta(seconds=10))
    put(storage, run, 2, by="silent", now=NOW + dt.timedelta(seconds=10))

    assert expire(storage, NOW + LEASE) == 1

    later = NOW + LEASE + dt.timedelta(seconds=1)
    assert claim(storage, run, "next", count=1, now=later) == [3]
    last_untouched, again = claim_tasks(storage, run.uuid, "next", later, 5)
    assert last_untouched.index == 4
    assert again == Task(1, COMPUTING, HALF, "next", 2, later + LEASE, later)


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
    run = new_run(storage, 1, RunPolicy(lease_seconds=30, max_attempts=2))
    now = NOW
    for attempt, state in [(1, WAITING), (2, FAILED)]:
        [task] = claim_tasks(storage, run.uuid, f"worker-{attempt}", now, 1)
        assert (task.index, task.attempts) == (0, attempt)
        put(storage, run, 0, HALF * attempt // 2, by=f"worker-{attempt}", now=now)
        now += LEASE
        assert expire(storage, now) == 1
        assert storage.runs.get_task(run.uuid, 0).state is state

    last_claimed = NOW + LEASE
    assert storage.runs.get_task(run.uuid, 0) == Task(0, FAILED, HALF, None, 2, None, last_claimed)
    failed = storage.runs.get_run(run.uuid)
    assert (failed.num_failed, failed.num_waiting, failed.num_computing) == (1, 0, 0)
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
    assert put(storage, run, 0, state=FAILED) == Task(0, FAILED, 0, None, 1, None, NOW)
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
    started = None if everything else NOW  # a partial restart keeps when it last started
    assert [storage.runs.get_task(run.uuid, i) for i in range(2)] == [
        Task(0, WAITING, progress, None, 0, None, started),
        Task(1, WAITING, 0, None, 0, None, started),
    ]
    assert counters_of(storage, run) == RunCounters(progress=progress)
    later = NOW + 2 * LEASE
    claimed = claim_tasks(storage, run.uuid, "again", later, 2)
    assert [(task.index, task.attempts) for task in claimed] == [(0, 1), (1, 1)]


def test_a_restart_resets_the_attempts_and_leases_of_unfinished_tasks(storage: Storage) -> None:
    run = new_run(storage, 3, LEASED)
    claim(storage, run, count=3)
    put(storage, run, 1, FULL_PROGRESS, DONE, by="w")
    expire(storage, NOW + LEASE)
    claim(storage, run, count=1)  # task 0, its second attempt

    storage.runs.restart(run.uuid, everything=False)

    assert [storage.runs.get_task(run.uuid, i) for i in range(3)] == [
        Task(0, WAITING, 0, None, 0, None, NOW),
        Task(1, DONE, FULL_PROGRESS, "w", 1, None, NOW),
        Task(2, WAITING, 0, None, 0, None, NOW),
    ]
    assert expire(storage, NOW + 10 * LEASE) == 0
