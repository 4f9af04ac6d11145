"""Leases and attempts through the use cases, and when a worker counts as heard from, on the
memory store.
"""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.domain import (
    Conflict,
    Task,
    TaskChange,
    TaskState,
    WorkerNotFound,
    WorkerRegistration,
    WorkerStatus,
)
from taskfarm.domain.worker import LAST_SEEN_PRECISION
from taskfarm.service import FarmService
from tests.fakes import FakeClock
from tests.unit.service_setup import DONE, LEASE, MICROSECOND, WORKER

# Leases


def test_claimed_task_counts_an_attempt_and_is_leased_from_the_clock_time(
    leasing: FarmService, clock: FakeClock
) -> None:
    worker = leasing.register_worker(WORKER).uuid
    run = leasing.create_run(2)
    clock.advance(dt.timedelta(minutes=3))

    claimed = leasing.claim_task(run.uuid, worker)

    assert claimed == Task(
        0, TaskState.COMPUTING, 0, worker, 1, clock.now() + LEASE, started=clock.now()
    )
    assert leasing.get_task(run.uuid, 0) == claimed


def test_lease_is_kept_until_just_before_it_ends(
    leasing: FarmService, two_workers: tuple[str, str], clock: FakeClock
) -> None:
    worker, _ = two_workers
    run = leasing.create_run(1)
    claimed = leasing.claim_task(run.uuid, worker)

    clock.advance(LEASE - MICROSECOND)

    assert leasing.expire_leases() == 0
    assert leasing.get_task(run.uuid, 0) == claimed


def test_expired_lease_hands_task_to_next_worker(
    leasing: FarmService, two_workers: tuple[str, str], clock: FakeClock
) -> None:
    silent, next_worker = two_workers
    run = leasing.create_run(1)
    started = clock.now()
    leasing.claim_task(run.uuid, silent)
    leasing.update_task(run.uuid, 0, TaskChange(progress=40), silent)

    clock.advance(LEASE)
    assert leasing.expire_leases() == 1
    assert leasing.get_task(run.uuid, 0) == Task(
        0, TaskState.WAITING, 40, None, attempts=1, started=started
    )
    counted = leasing.get_run(run.uuid)
    assert (counted.num_computing, counted.num_waiting, counted.num_failed) == (0, 1, 0)

    claimed = leasing.claim_task(run.uuid, next_worker)
    assert claimed == Task(
        0, TaskState.COMPUTING, 40, next_worker, 2, clock.now() + LEASE, started=clock.now()
    )


def test_lease_that_ran_out_is_expired_once(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(3)
    leasing.claim_tasks(run.uuid, worker, count=2)
    clock.advance(2 * LEASE)

    assert [leasing.expire_leases(), leasing.expire_leases()] == [2, 0]


def test_expiry_covers_the_leases_of_every_run_and_only_those_that_ran_out(
    leasing: FarmService, two_workers: tuple[str, str], clock: FakeClock
) -> None:
    worker, other = two_workers
    short, long = leasing.create_run(2, lease_seconds=10), leasing.create_run(2)
    leasing.claim_tasks(short.uuid, worker, count=2)
    leasing.claim_task(long.uuid, other)

    clock.advance(dt.timedelta(seconds=30))

    assert leasing.expire_leases() == 2
    assert leasing.get_run(short.uuid).num_computing == 0
    assert leasing.get_task(long.uuid, 0).worker == other


def test_run_without_a_lease_keeps_tasks_with_their_worker_however_long(
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(1)
    claimed = taskfarm.claim_task(run.uuid, worker)

    clock.advance(dt.timedelta(days=365))

    assert taskfarm.expire_leases() == 0
    assert claimed is not None
    assert claimed.lease_expires is None
    assert taskfarm.get_task(run.uuid, 0) == claimed


def test_heartbeat_renews_the_lease_from_now_and_changes_nothing_else(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(1)
    started = clock.now()
    leasing.claim_task(run.uuid, worker)
    leasing.update_task(run.uuid, 0, TaskChange(progress=25), worker)
    clock.advance(dt.timedelta(seconds=50))

    renewed = leasing.heartbeat(run.uuid, 0, worker)

    assert renewed == Task(
        0, TaskState.COMPUTING, 25, worker, 1, clock.now() + LEASE, started=started
    )
    clock.advance(dt.timedelta(seconds=59))
    assert leasing.expire_leases() == 0
    clock.advance(dt.timedelta(seconds=1))
    assert leasing.expire_leases() == 1


def test_progress_report_renews_the_lease_too(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(1)
    leasing.claim_task(run.uuid, worker)
    clock.advance(dt.timedelta(seconds=45))

    reported = leasing.update_task(run.uuid, 0, TaskChange(progress=10), worker)

    assert reported.lease_expires == clock.now() + LEASE


def test_heartbeat_on_a_task_nobody_claimed_leaves_the_order_of_claims_alone(
    leasing: FarmService, worker: str
) -> None:
    run = leasing.create_run(5)

    with pytest.raises(Conflict, match="task 3 is waiting, not computing"):
        leasing.heartbeat(run.uuid, 3, worker)

    claimed = leasing.claim_tasks(run.uuid, worker, count=5)
    assert [task.index for task in claimed] == list(range(5))


@pytest.mark.parametrize("status", ["done", "failed", "waiting"])
def test_heartbeat_on_a_task_no_longer_computing_is_a_conflict_and_changes_nothing(
    leasing: FarmService, worker: str, status: str
) -> None:
    run = leasing.create_run(2, max_attempts=1)
    leasing.claim_task(run.uuid, worker)
    leasing.update_task(run.uuid, 0, TaskChange.from_fields(status=status), worker)
    before = leasing.get_task(run.uuid, 0), leasing.get_run(run.uuid)

    with pytest.raises(Conflict, match=f"task 0 is {status}, not computing"):
        leasing.heartbeat(run.uuid, 0, worker)

    assert (leasing.get_task(run.uuid, 0), leasing.get_run(run.uuid)) == before


def test_heartbeat_from_a_worker_whose_task_went_to_another_is_a_conflict(
    leasing: FarmService, two_workers: tuple[str, str], clock: FakeClock
) -> None:
    zombie, successor = two_workers
    run = leasing.create_run(1)
    leasing.claim_task(run.uuid, zombie)
    clock.advance(LEASE)
    leasing.expire_leases()
    taken = leasing.claim_task(run.uuid, successor)
    clock.advance(dt.timedelta(seconds=5))

    with pytest.raises(Conflict, match="belongs to worker 'worker-2'"):
        leasing.heartbeat(run.uuid, 0, zombie)

    assert leasing.get_task(run.uuid, 0) == taken


@pytest.mark.parametrize(
    "change", [DONE, TaskChange(progress=50), TaskChange(state=TaskState.WAITING)]
)
def test_report_from_a_worker_whose_task_went_to_another_is_refused_and_changes_nothing(
    leasing: FarmService, two_workers: tuple[str, str], clock: FakeClock, change: TaskChange
) -> None:
    zombie, successor = two_workers
    run = leasing.create_run(1)
    leasing.claim_task(run.uuid, zombie)
    clock.advance(LEASE)
    leasing.expire_leases()
    taken = leasing.claim_task(run.uuid, successor)
    before = leasing.get_run(run.uuid)

    with pytest.raises(Conflict):
        leasing.update_task(run.uuid, 0, change, zombie)

    assert leasing.get_task(run.uuid, 0) == taken
    assert leasing.get_run(run.uuid) == before


def test_worker_whose_lease_ran_out_may_still_finish_a_task_nobody_took(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(1)
    leasing.claim_task(run.uuid, worker)
    clock.advance(LEASE)
    leasing.expire_leases()

    finished = leasing.update_task(run.uuid, 0, DONE, worker)

    assert finished.state is TaskState.DONE
    assert leasing.claim_tasks(run.uuid, worker, count=1) == []
    assert leasing.get_run(run.uuid).num_done == 1


def test_task_fails_when_its_last_allowed_lease_runs_out_and_is_counted_failed(
    leasing: FarmService, two_workers: tuple[str, str], clock: FakeClock
) -> None:
    worker, _ = two_workers
    run = leasing.create_run(2, max_attempts=2)
    assert [task.index for task in leasing.claim_tasks(run.uuid, worker, count=1)] == [0]
    clock.advance(LEASE)
    assert leasing.expire_leases() == 1
    # A task whose lease ran out waits behind the untouched ones.
    started = clock.now()
    assert [task.index for task in leasing.claim_tasks(run.uuid, worker, count=2)] == [1, 0]
    leasing.update_task(run.uuid, 1, DONE, worker)
    clock.advance(LEASE)
    assert leasing.expire_leases() == 1

    assert leasing.get_task(run.uuid, 0) == Task(
        0, TaskState.FAILED, 0, None, attempts=2, started=started
    )
    counted = leasing.get_run(run.uuid)
    assert (counted.num_failed, counted.num_done, counted.num_computing) == (1, 1, 0)
    assert leasing.claim_tasks(run.uuid, worker, count=5) == []


def test_restart_brings_failed_tasks_back_with_every_attempt_again(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(1, max_attempts=1)
    leasing.claim_task(run.uuid, worker)
    clock.advance(LEASE)
    leasing.expire_leases()
    assert leasing.get_run(run.uuid).num_failed == 1

    leasing.restart_run(run.uuid, everything=False)

    assert (leasing.get_run(run.uuid).num_failed, leasing.get_run(run.uuid).num_waiting) == (0, 1)
    claimed = leasing.claim_task(run.uuid, worker)
    assert claimed is not None
    assert claimed.attempts == 1


# Workers heard from


def test_registered_worker_was_last_seen_when_it_registered(
    taskfarm: FarmService, clock: FakeClock
) -> None:
    worker = taskfarm.register_worker(WORKER)

    assert worker.last_seen == worker.started == clock.now()


def test_claim_records_when_the_worker_was_last_seen(
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(1)
    clock.advance(dt.timedelta(minutes=5))

    taskfarm.claim_tasks(run.uuid, worker, count=1)
    clock.advance(dt.timedelta(minutes=1))
    taskfarm.claim_tasks(run.uuid, worker, count=1)  # nothing left: heard from all the same

    [status] = taskfarm.list_workers()
    assert status.worker.last_seen == clock.now()
    assert status.worker.started == clock.now() - dt.timedelta(minutes=6)


def test_update_naming_its_worker_records_when_it_was_last_seen(
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(1)
    taskfarm.claim_task(run.uuid, worker)
    clock.advance(dt.timedelta(minutes=5))

    taskfarm.update_task(run.uuid, 0, TaskChange(progress=1), worker)
    seen = clock.now()
    clock.advance(dt.timedelta(minutes=5))
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=2))

    assert [status.worker.last_seen for status in taskfarm.list_workers()] == [seen]


def test_heartbeat_records_when_the_worker_was_last_seen(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(1)
    leasing.claim_task(run.uuid, worker)
    clock.advance(dt.timedelta(seconds=30))

    leasing.heartbeat(run.uuid, 0, worker)

    assert [status.worker.last_seen for status in leasing.list_workers()] == [clock.now()]


def test_a_worker_heard_from_again_soon_is_not_written_down_again(
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(10)
    clock.advance(LAST_SEEN_PRECISION * 2)
    taskfarm.claim_task(run.uuid, worker)
    written = clock.now()

    clock.advance(LAST_SEEN_PRECISION / 2)
    taskfarm.claim_task(run.uuid, worker)
    assert [status.worker.last_seen for status in taskfarm.list_workers()] == [written]

    clock.advance(LAST_SEEN_PRECISION / 2)
    taskfarm.claim_task(run.uuid, worker)
    assert [status.worker.last_seen for status in taskfarm.list_workers()] == [clock.now()]


def test_an_unregistered_worker_is_refused_however_often_it_asks(
    taskfarm: FarmService, clock: FakeClock
) -> None:
    run = taskfarm.create_run(10)
    for _ in range(3):
        with pytest.raises(WorkerNotFound):
            taskfarm.claim_task(run.uuid, "nobody")
        clock.advance(LAST_SEEN_PRECISION / 10)
    assert taskfarm.get_run(run.uuid).num_computing == 0


@pytest.mark.parametrize("worker_uuid", ["nobody", ""])
def test_update_naming_an_unregistered_worker_is_refused_and_changes_nothing(
    taskfarm: FarmService, worker: str, worker_uuid: str
) -> None:
    run = taskfarm.create_run(1)
    claimed = taskfarm.claim_task(run.uuid, worker)

    with pytest.raises(WorkerNotFound):
        taskfarm.update_task(run.uuid, 0, DONE, worker_uuid)

    assert taskfarm.get_task(run.uuid, 0) == claimed


def test_workers_are_listed_in_registration_order_with_the_tasks_they_compute(
    leasing: FarmService, two_workers: tuple[str, str]
) -> None:
    busy, idle = two_workers
    third = leasing.register_worker(WorkerRegistration("worker-3", "node3", 1)).uuid
    first, second = leasing.create_run(5), leasing.create_run(5)
    leasing.claim_tasks(first.uuid, busy, count=2)
    leasing.claim_task(second.uuid, busy)
    leasing.claim_task(second.uuid, idle)
    leasing.update_task(second.uuid, 1, DONE, idle)
    leasing.claim_task(first.uuid, third)
    leasing.update_task(first.uuid, 2, TaskChange(state=TaskState.WAITING), third)

    statuses = leasing.list_workers()

    workers = [leasing.workers.get_worker(uuid) for uuid in (busy, idle, third)]
    assert statuses == [
        WorkerStatus(workers[0], 3),
        WorkerStatus(workers[1], 0),
        WorkerStatus(workers[2], 0),
    ]


def test_worker_whose_leases_ran_out_holds_no_tasks(
    leasing: FarmService, worker: str, clock: FakeClock
) -> None:
    run = leasing.create_run(3)
    leasing.claim_tasks(run.uuid, worker, count=3)
    clock.advance(LEASE)

    leasing.expire_leases()

    assert [status.tasks_held for status in leasing.list_workers()] == [0]


def test_no_workers_are_listed_before_any_registers(taskfarm: FarmService) -> None:
    assert taskfarm.list_workers() == []
