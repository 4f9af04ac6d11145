"""The use cases of runs and workers, and of users and tokens, on the memory store."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from collections.abc import Iterator

import jwt
import pytest

from taskfarm.accounts import Accounts
from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.tokens import JwtSigner
from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_CLAIM_COUNT,
    MAX_TASKS,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    RunNotFound,
    RunPolicy,
    Task,
    TaskChange,
    TaskHolder,
    TaskNotFound,
    TaskState,
    TokenClaims,
    User,
    UserNotFound,
    WorkerNotFound,
    WorkerRegistration,
    WorkerStatus,
)
from taskfarm.domain.worker import LAST_SEEN_PRECISION
from taskfarm.service import FarmService, Listing
from tests.claiming import claim_tasks
from tests.fakes import FakeClock
from tests.unit.conftest import TOKEN_LIFETIME

WORKER = WorkerRegistration(uuid="worker-1", hostname="node1", pid=1234)
OTHER = WorkerRegistration(uuid="worker-2", hostname="node2", pid=99)
LEASE = dt.timedelta(seconds=60)
MICROSECOND = dt.timedelta(microseconds=1)
DONE = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)


@pytest.fixture
def worker(taskfarm: FarmService) -> str:
    return taskfarm.register_worker(WORKER).uuid


@pytest.fixture
def leasing(storage: MemoryStorage, clock: FakeClock) -> Iterator[FarmService]:
    """A task farm whose runs lease tasks for a minute and try each at most three times,
    unless they say otherwise."""
    leasing = FarmService(
        runs=storage.runs,
        workers=storage.workers,
        clock=clock,
        default_policy=RunPolicy(lease_seconds=60, max_attempts=3),
    )
    yield leasing
    leasing.close()


@pytest.fixture
def two_workers(leasing: FarmService) -> tuple[str, str]:
    return leasing.register_worker(WORKER).uuid, leasing.register_worker(OTHER).uuid


# Runs and workers


@pytest.mark.parametrize("num_tasks", [0, -3, MAX_TASKS + 1, True, 3.5, "3", None])
def test_run_of_an_invalid_number_of_tasks_is_refused(
    taskfarm: FarmService, num_tasks: object
) -> None:
    with pytest.raises(InvalidInput, match="numTasks"):
        taskfarm.create_run(num_tasks)

    assert taskfarm.list_runs() == []


def test_largest_run_is_created_untouched(taskfarm: FarmService) -> None:
    run = taskfarm.create_run(MAX_TASKS)

    assert taskfarm.get_run(run.uuid) == run
    assert (run.num_waiting, run.percent_done) == (MAX_TASKS, 0.0)
    assert taskfarm.get_task(run.uuid, MAX_TASKS - 1) == Task.untouched(MAX_TASKS - 1)


def test_runs_get_distinct_uuids_and_are_listed_in_creation_order(taskfarm: FarmService) -> None:
    runs = [taskfarm.create_run(n) for n in (3, 1, 2)]

    assert len({run.uuid for run in runs}) == 3
    assert taskfarm.list_runs() == runs


def test_registered_worker_starts_at_the_clock_time(
    taskfarm: FarmService, clock: FakeClock
) -> None:
    worker = taskfarm.register_worker(WORKER)

    assert (worker.registration, worker.started) == (WORKER, clock.now())


def test_registering_the_same_worker_again_returns_it_unchanged(
    taskfarm: FarmService, clock: FakeClock
) -> None:
    first = taskfarm.register_worker(WORKER)
    clock.advance(dt.timedelta(minutes=5))

    assert taskfarm.register_worker(WORKER) == first


def test_worker_uuid_taken_by_another_process_is_a_conflict(taskfarm: FarmService) -> None:
    taskfarm.register_worker(WORKER)

    with pytest.raises(Conflict):
        taskfarm.register_worker(WorkerRegistration(WORKER.uuid, WORKER.hostname, pid=999))


def test_claim_by_an_unregistered_worker_is_refused(taskfarm: FarmService) -> None:
    run = taskfarm.create_run(3)

    with pytest.raises(WorkerNotFound):
        taskfarm.claim_task(run.uuid, "nobody")

    assert taskfarm.get_run(run.uuid).num_computing == 0


def test_claim_on_an_unknown_run_is_refused(taskfarm: FarmService, worker: str) -> None:
    with pytest.raises(RunNotFound):
        taskfarm.claim_task("no-such-run", worker)


def test_claims_hand_out_every_task_in_order_then_nothing(
    taskfarm: FarmService, worker: str
) -> None:
    run = taskfarm.create_run(3)

    claimed = [taskfarm.claim_task(run.uuid, worker) for _ in range(4)]

    assert claimed == [Task(i, TaskState.COMPUTING, 0, worker, attempts=1) for i in range(3)] + [
        None
    ]
    assert taskfarm.get_run(run.uuid).num_computing == 3


def test_requeued_task_is_handed_out_before_untouched_ones(
    taskfarm: FarmService, worker: str
) -> None:
    run = taskfarm.create_run(5)
    for _ in range(3):
        taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 2, TaskChange(progress=10, state=TaskState.WAITING))
    taskfarm.update_task(run.uuid, 1, TaskChange(state=TaskState.WAITING))

    order = [taskfarm.claim_task(run.uuid, worker) for _ in range(3)]

    assert [task.index for task in order if task is not None] == [1, 2, 3]
    assert order[1] == Task(2, TaskState.COMPUTING, 10, worker, attempts=2)


def test_task_written_out_of_order_is_skipped_by_claims(taskfarm: FarmService, worker: str) -> None:
    run = taskfarm.create_run(3)
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))

    claimed = [taskfarm.claim_task(run.uuid, worker) for _ in range(3)]

    assert [task.index if task else None for task in claimed] == [0, 2, None]


def test_update_moves_the_run_counters(taskfarm: FarmService, worker: str) -> None:
    run = taskfarm.create_run(4)
    taskfarm.claim_task(run.uuid, worker)
    taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=FULL_PROGRESS // 2))

    run = taskfarm.get_run(run.uuid)

    assert (run.num_done, run.num_computing, run.num_waiting) == (1, 1, 2)
    assert run.percent_done == pytest.approx(37.5)


def test_partial_restart_redoes_only_unfinished_tasks(taskfarm: FarmService, worker: str) -> None:
    run = taskfarm.create_run(3)
    for _ in range(3):
        taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=5, state=TaskState.DONE))

    taskfarm.restart_run(run.uuid, everything=False)

    assert taskfarm.get_task(run.uuid, 0) == Task(0, TaskState.DONE, FULL_PROGRESS, worker, 1)
    assert taskfarm.get_task(run.uuid, 1) == Task(1, TaskState.WAITING, 5)
    assert taskfarm.get_task(run.uuid, 2) == Task(2, TaskState.WAITING, 0)
    assert taskfarm.get_run(run.uuid).num_done == 1
    assert [taskfarm.claim_task(run.uuid, worker) for _ in range(3)][-1] is None


def test_full_restart_makes_every_task_untouched(taskfarm: FarmService, worker: str) -> None:
    run = taskfarm.create_run(2)
    taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))

    taskfarm.restart_run(run.uuid, everything=True)

    assert taskfarm.get_task(run.uuid, 0) == Task.untouched(0)
    assert (taskfarm.get_run(run.uuid).num_waiting, taskfarm.get_run(run.uuid).percent_done) == (
        2,
        0,
    )


@pytest.mark.parametrize("index", [-1, 3])
def test_task_outside_the_run_is_not_found(taskfarm: FarmService, index: int) -> None:
    run = taskfarm.create_run(3)

    with pytest.raises(TaskNotFound):
        taskfarm.get_task(run.uuid, index)
    with pytest.raises(TaskNotFound):
        taskfarm.update_task(run.uuid, index, TaskChange(progress=1))


def test_deleted_run_is_gone(taskfarm: FarmService, worker: str) -> None:
    run = taskfarm.create_run(3)
    taskfarm.claim_task(run.uuid, worker)

    taskfarm.delete_run(run.uuid)

    assert taskfarm.list_runs() == []
    with pytest.raises(RunNotFound):
        taskfarm.get_run(run.uuid)
    with pytest.raises(RunNotFound):
        taskfarm.delete_run(run.uuid)


@pytest.mark.parametrize("run_uuid", ["", "x" * 65, "nul\x00", "\ud800"])
def test_run_uuid_no_run_could_have_is_not_found(taskfarm: FarmService, run_uuid: str) -> None:
    with pytest.raises(RunNotFound):
        taskfarm.get_run(run_uuid)
    with pytest.raises(RunNotFound):
        taskfarm.get_task(run_uuid, 0)


# Policies


def test_run_created_without_a_policy_takes_the_default_of_the_server(leasing: FarmService) -> None:
    run = leasing.create_run(3)

    assert run.policy == RunPolicy(lease_seconds=60, max_attempts=3)
    assert leasing.get_run(run.uuid).policy == run.policy


def test_policy_given_with_a_run_overrides_the_default_field_by_field(leasing: FarmService) -> None:
    shorter = leasing.create_run(3, lease_seconds=5)
    stricter = leasing.create_run(3, max_attempts=1)
    both = leasing.create_run(3, lease_seconds=600, max_attempts=10)

    assert [leasing.get_run(run.uuid).policy for run in (shorter, stricter, both)] == [
        RunPolicy(lease_seconds=5, max_attempts=3),
        RunPolicy(lease_seconds=60, max_attempts=1),
        RunPolicy(lease_seconds=600, max_attempts=10),
    ]


def test_server_without_a_default_lease_creates_runs_without_one(taskfarm: FarmService) -> None:
    assert taskfarm.create_run(3).policy == RunPolicy(lease_seconds=None, max_attempts=None)
    assert taskfarm.create_run(3, lease_seconds=30).policy == RunPolicy(lease_seconds=30)


@pytest.mark.parametrize(
    ("lease_seconds", "max_attempts", "field"),
    [(0, None, "leaseSeconds"), ("60", None, "leaseSeconds"), (None, -1, "maxAttempts")],
)
def test_run_with_an_invalid_policy_is_refused_and_not_created(
    leasing: FarmService, lease_seconds: object, max_attempts: object, field: str
) -> None:
    with pytest.raises(InvalidInput, match=field):
        leasing.create_run(3, lease_seconds=lease_seconds, max_attempts=max_attempts)

    assert leasing.list_runs() == []


# Claims of several tasks at once


def test_claim_of_several_tasks_hands_out_up_to_that_many_in_index_order(
    taskfarm: FarmService, worker: str
) -> None:
    run = taskfarm.create_run(5)

    batches = [taskfarm.claim_tasks(run.uuid, worker, count=3) for _ in range(3)]

    assert [[task.index for task in batch] for batch in batches] == [[0, 1, 2], [3, 4], []]
    assert taskfarm.get_run(run.uuid).num_computing == 5


def test_claim_of_several_tasks_takes_requeued_ones_first(
    taskfarm: FarmService, worker: str
) -> None:
    run = taskfarm.create_run(6)
    taskfarm.claim_tasks(run.uuid, worker, count=3)
    taskfarm.update_task(run.uuid, 2, TaskChange(progress=7, state=TaskState.WAITING))

    claimed = taskfarm.claim_tasks(run.uuid, worker, count=2)

    assert claimed == [
        Task(2, TaskState.COMPUTING, 7, worker, attempts=2),
        Task(3, TaskState.COMPUTING, 0, worker, attempts=1),
    ]


@pytest.mark.parametrize("count", [0, -1, MAX_CLAIM_COUNT + 1, True, 1.5, "2", None])
def test_claim_of_an_invalid_number_of_tasks_is_refused_and_claims_nothing(
    taskfarm: FarmService, worker: str, count: object
) -> None:
    run = taskfarm.create_run(3)

    with pytest.raises(InvalidInput, match="count"):
        taskfarm.claim_tasks(run.uuid, worker, count=count)

    assert taskfarm.get_run(run.uuid).num_computing == 0


@pytest.mark.parametrize("worker_uuid", ["nobody", "", "x" * 65])
def test_claim_of_several_tasks_by_an_unregistered_worker_is_refused(
    taskfarm: FarmService, worker_uuid: str
) -> None:
    run = taskfarm.create_run(3)

    with pytest.raises(WorkerNotFound):
        taskfarm.claim_tasks(run.uuid, worker_uuid, count=2)

    assert taskfarm.get_run(run.uuid).num_computing == 0


def test_claims_of_several_workers_at_once_hand_out_what_each_in_turn_would(
    taskfarm: FarmService, worker: str
) -> None:
    other = taskfarm.register_worker(OTHER).uuid
    run = taskfarm.create_run(5)

    async def at_once() -> list[list[Task]]:
        claims = [(worker, 2), (other, 1), (worker, 3)]
        return await asyncio.gather(*(taskfarm.claim(run.uuid, w, n) for w, n in claims))

    each = asyncio.run(at_once())

    assert [[(t.index, t.worker) for t in tasks] for tasks in each] == [
        [(0, worker), (1, worker)],
        [(2, other)],
        [(3, worker), (4, worker)],
    ]


@pytest.mark.parametrize(
    ("bad", "error"), [(("nobody", 1), WorkerNotFound), ((WORKER.uuid, 0), InvalidInput)]
)
def test_a_claim_that_cannot_be_made_fails_alone_among_claims_at_once(
    taskfarm: FarmService, worker: str, bad: tuple[str, int], error: type[Exception]
) -> None:
    run = taskfarm.create_run(5)

    async def at_once() -> list[list[Task] | BaseException]:
        claims = [(worker, 1), bad, (worker, 1)]
        return await asyncio.gather(
            *(taskfarm.claim(run.uuid, w, n) for w, n in claims), return_exceptions=True
        )

    first, refused, second = asyncio.run(at_once())

    assert isinstance(refused, error)
    assert isinstance(first, list)
    assert isinstance(second, list)
    assert [[task.index for task in tasks] for tasks in (first, second)] == [[0], [1]]
    assert taskfarm.get_run(run.uuid).num_computing == 2


# Leases


def test_claimed_task_counts_an_attempt_and_is_leased_from_the_clock_time(
    leasing: FarmService, clock: FakeClock
) -> None:
    worker = leasing.register_worker(WORKER).uuid
    run = leasing.create_run(2)
    clock.advance(dt.timedelta(minutes=3))

    claimed = leasing.claim_task(run.uuid, worker)

    assert claimed == Task(0, TaskState.COMPUTING, 0, worker, 1, clock.now() + LEASE)
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
    run = leasing.create_run(3)
    leasing.claim_task(run.uuid, silent)
    leasing.update_task(run.uuid, 0, TaskChange(progress=40), silent)

    clock.advance(LEASE)
    assert leasing.expire_leases() == 1
    assert leasing.get_task(run.uuid, 0) == Task(0, TaskState.WAITING, 40, None, attempts=1)
    counted = leasing.get_run(run.uuid)
    assert (counted.num_computing, counted.num_waiting, counted.num_failed) == (0, 3, 0)

    claimed = leasing.claim_task(run.uuid, next_worker)
    assert claimed == Task(0, TaskState.COMPUTING, 40, next_worker, 2, clock.now() + LEASE)


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
    leasing.claim_task(run.uuid, worker)
    leasing.update_task(run.uuid, 0, TaskChange(progress=25), worker)
    clock.advance(dt.timedelta(seconds=50))

    renewed = leasing.heartbeat(run.uuid, 0, worker)

    assert renewed == Task(0, TaskState.COMPUTING, 25, worker, 1, clock.now() + LEASE)
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
    run = leasing.create_run(2)
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
    run = leasing.create_run(2)
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
    for _ in range(2):
        assert [task.index for task in leasing.claim_tasks(run.uuid, worker, count=1)] == [0]
        clock.advance(LEASE)
        assert leasing.expire_leases() == 1

    assert leasing.get_task(run.uuid, 0) == Task(0, TaskState.FAILED, 0, None, attempts=2)
    counted = leasing.get_run(run.uuid)
    assert (counted.num_failed, counted.num_waiting, counted.num_computing) == (1, 1, 0)
    assert [task.index for task in leasing.claim_tasks(run.uuid, worker, count=5)] == [1]


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


# A look at one run


def test_holders_of_a_run_are_its_busiest_workers_first_as_they_registered(
    taskfarm: FarmService, two_workers: tuple[str, str]
) -> None:
    first, second = two_workers
    run, other = taskfarm.create_run(10), taskfarm.create_run(10)
    taskfarm.claim_task(run.uuid, first)
    taskfarm.claim_tasks(run.uuid, second, count=3)
    taskfarm.claim_tasks(other.uuid, first, count=5)

    holders = taskfarm.holders(run.uuid, limit=10)

    registered = [taskfarm.workers.get_worker(uuid) for uuid in (second, first)]
    assert holders == Listing(
        [TaskHolder(second, 3, registered[0]), TaskHolder(first, 1, registered[1])], more=False
    )


def test_holders_beyond_the_limit_are_left_out_and_said_to_be_there(
    taskfarm: FarmService, two_workers: tuple[str, str]
) -> None:
    first, second = two_workers
    run = taskfarm.create_run(10)
    taskfarm.claim_tasks(run.uuid, first, count=2)
    taskfarm.claim_tasks(run.uuid, second, count=2)

    holders = taskfarm.holders(run.uuid, limit=1)

    # equally busy: by uuid
    assert [(holder.uuid, holder.tasks_held) for holder in holders.items] == [(first, 2)]
    assert holders.more


def test_a_holder_the_worker_store_does_not_know_is_listed_without_registration(
    storage: MemoryStorage, taskfarm: FarmService, clock: FakeClock
) -> None:
    run = taskfarm.create_run(3)
    claim_tasks(storage, run.uuid, "never-registered", clock.now())
    assert taskfarm.holders(run.uuid, limit=5) == Listing(
        [TaskHolder("never-registered", 1, None)], more=False
    )


def test_failed_and_requeued_tasks_are_listed_up_to_the_limit_saying_whether_there_are_more(
    taskfarm: FarmService, worker: str
) -> None:
    run = taskfarm.create_run(10)
    taskfarm.claim_tasks(run.uuid, worker, count=6)
    for index in (5, 1, 3):
        taskfarm.update_task(run.uuid, index, TaskChange(state=TaskState.FAILED))
    for index in (0, 2):
        taskfarm.update_task(run.uuid, index, TaskChange(state=TaskState.WAITING))

    failed, requeued = taskfarm.failed_tasks(run.uuid, 2), taskfarm.requeued_tasks(run.uuid, 2)

    assert [task.index for task in failed.items] == [1, 3]
    assert failed.more
    assert [task.index for task in requeued.items] == [0, 2]
    assert not requeued.more
    assert taskfarm.failed_tasks(run.uuid, 3) == Listing(
        [taskfarm.get_task(run.uuid, index) for index in (1, 3, 5)], more=False
    )


@pytest.mark.parametrize("look", ["holders", "failed_tasks", "requeued_tasks"])
@pytest.mark.parametrize("uuid", ["nope", "", "x" * 65, "a\x00b"])
def test_a_look_at_an_unknown_run_is_not_found(taskfarm: FarmService, look: str, uuid: str) -> None:
    with pytest.raises(RunNotFound):
        getattr(taskfarm, look)(uuid, 10)


# Users and passwords


@pytest.mark.parametrize("username", ["", "a:b", "x" * 65, "tab\there"])
def test_user_with_an_invalid_name_is_refused(accounts: Accounts, username: str) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user(username, "secret")

    assert not accounts.has_users()


def test_user_with_an_empty_password_is_refused(accounts: Accounts) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user("alice", "")


def test_second_user_of_the_same_name_is_a_conflict(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    with pytest.raises(Conflict):
        accounts.add_user("alice", "other")

    assert accounts.authenticate("alice", "secret").username == "alice"


def test_users_are_listed_and_stored_without_their_password(accounts: Accounts) -> None:
    alice = accounts.add_user("alice", "secret")
    bob = accounts.add_user("bob", "hunter2")

    assert accounts.list_users() == [alice, bob]
    assert "secret" not in alice.password_hash
    assert alice.token_stamp != bob.token_stamp


def test_right_password_authenticates_the_user(accounts: Accounts) -> None:
    alice = accounts.add_user("alice", "secret")

    assert accounts.authenticate("alice", "secret") == alice


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("alice", ""), ("bob", "secret"), ("", "secret")]
)
def test_wrong_password_or_unknown_user_fails_alike(
    accounts: Accounts, username: str, password: str
) -> None:
    accounts.add_user("alice", "secret")

    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        accounts.authenticate(username, password)


def test_changed_password_replaces_the_old_one(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    accounts.change_password("alice", "new secret")

    assert accounts.authenticate("alice", "new secret").username == "alice"
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "secret")


def test_password_of_an_unknown_user_cannot_be_changed(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound):
        accounts.change_password("nobody", "secret")


def test_deleted_user_cannot_authenticate(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    accounts.delete_user("alice")

    assert not accounts.has_users()
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "secret")
    with pytest.raises(UserNotFound):
        accounts.delete_user("alice")


# Tokens


@pytest.fixture
def alice(accounts: Accounts) -> User:
    return accounts.add_user("alice", "secret")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def test_issued_token_authenticates_its_user(accounts: Accounts, alice: User) -> None:
    token = accounts.issue_token(alice)

    assert accounts.authenticate_token(token) == alice


def test_token_is_accepted_until_just_before_its_lifetime_ends(
    accounts: Accounts, alice: User, clock: FakeClock
) -> None:
    token = accounts.issue_token(alice)

    clock.advance(TOKEN_LIFETIME - dt.timedelta(seconds=1))

    assert accounts.authenticate_token(token) == alice


@pytest.mark.parametrize("past", [dt.timedelta(0), dt.timedelta(seconds=1), dt.timedelta(days=30)])
def test_token_expires_when_the_clock_reaches_the_end_of_its_lifetime(
    accounts: Accounts, alice: User, clock: FakeClock, past: dt.timedelta
) -> None:
    token = accounts.issue_token(alice)

    clock.advance(TOKEN_LIFETIME + past)

    with pytest.raises(AuthenticationFailed, match="expired"):
        accounts.authenticate_token(token)


def test_token_dies_when_the_password_changes(accounts: Accounts, alice: User) -> None:
    old_token = accounts.issue_token(alice)

    accounts.change_password("alice", "new secret")

    with pytest.raises(AuthenticationFailed, match="revoked"):
        accounts.authenticate_token(old_token)
    new_token = accounts.issue_token(accounts.authenticate("alice", "new secret"))
    assert accounts.authenticate_token(new_token).username == "alice"


def test_token_dies_with_its_user_even_when_the_name_is_taken_again(
    accounts: Accounts, alice: User
) -> None:
    token = accounts.issue_token(alice)

    accounts.delete_user("alice")
    with pytest.raises(AuthenticationFailed, match="no longer exists"):
        accounts.authenticate_token(token)

    accounts.add_user("alice", "secret")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_token_signed_with_another_key_is_refused(
    accounts: Accounts, alice: User, clock: FakeClock
) -> None:
    forged = JwtSigner(b"another key, of thirty-two bytes").issue(
        TokenClaims("alice", alice.token_stamp, clock.now() + TOKEN_LIFETIME)
    )

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(forged)


def test_token_whose_claims_were_altered_is_refused(accounts: Accounts, alice: User) -> None:
    header, _, signature = accounts.issue_token(alice).split(".")
    bob = accounts.add_user("bob", "hunter2")
    claims = {"sub": "bob", "stamp": bob.token_stamp, "exp": 2**40}

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(f"{header}.{_json_b64(claims)}.{signature}")


def test_token_whose_signature_was_altered_is_refused(accounts: Accounts, alice: User) -> None:
    header, payload, signature = accounts.issue_token(alice).split(".")
    # The first character carries six bits of the signature, unlike the last.
    altered = ("B" if signature[0] == "A" else "A") + signature[1:]

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(f"{header}.{payload}.{altered}")


def test_unsigned_alg_none_token_is_refused(accounts: Accounts, alice: User) -> None:
    claims = _payload(accounts.issue_token(alice))
    unsigned = f"{_json_b64({'alg': 'none', 'typ': 'JWT'})}.{_json_b64(claims)}."

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(unsigned)


def test_token_signed_with_another_algorithm_is_refused(
    accounts: Accounts, alice: User, signing_key: bytes, clock: FakeClock
) -> None:
    claims = {"sub": "alice", "stamp": alice.token_stamp, "exp": clock.now() + TOKEN_LIFETIME}
    token = jwt.encode(claims, signing_key, algorithm="HS512")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_token_without_expiry_is_refused(
    accounts: Accounts, alice: User, signing_key: bytes
) -> None:
    token = jwt.encode({"sub": "alice", "stamp": alice.token_stamp}, signing_key, algorithm="HS256")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_oversized_token_is_refused_even_when_properly_signed(
    accounts: Accounts, alice: User, signing_key: bytes, clock: FakeClock
) -> None:
    expires = clock.now() + TOKEN_LIFETIME
    claims = {"sub": "alice", "stamp": alice.token_stamp, "exp": expires, "padding": "x" * 1024}
    token = jwt.encode(claims, signing_key, algorithm="HS256")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "..", "é.é.é"])
def test_garbage_token_is_refused(accounts: Accounts, alice: User, token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)
