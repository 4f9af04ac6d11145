"""The use cases of runs and workers, and of claims, on the memory store."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_CLAIM_COUNT,
    MAX_TASKS,
    Conflict,
    InvalidInput,
    RunNotFound,
    RunPolicy,
    Task,
    TaskChange,
    TaskNotFound,
    TaskState,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.service import FarmService
from tests.fakes import FakeClock
from tests.unit.service_setup import OTHER, WORKER

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
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(3)

    claimed = [taskfarm.claim_task(run.uuid, worker) for _ in range(4)]

    now = clock.now()
    assert claimed == [
        *(Task(i, TaskState.COMPUTING, 0, worker, attempts=1, started=now) for i in range(3)),
        None,
    ]
    assert taskfarm.get_run(run.uuid).num_computing == 3


def test_requeued_task_is_handed_out_before_untouched_ones(
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(5)
    for _ in range(3):
        taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 2, TaskChange(progress=10, state=TaskState.WAITING))
    taskfarm.update_task(run.uuid, 1, TaskChange(state=TaskState.WAITING))

    order = [taskfarm.claim_task(run.uuid, worker) for _ in range(3)]

    assert [task.index for task in order if task is not None] == [1, 2, 3]
    # Handed back, it gave its first attempt back.
    assert order[1] == Task(2, TaskState.COMPUTING, 10, worker, attempts=1, started=clock.now())


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


def test_partial_restart_redoes_only_unfinished_tasks(
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(3)
    for _ in range(3):
        taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=5, state=TaskState.DONE))

    taskfarm.restart_run(run.uuid, everything=False)

    now = clock.now()
    assert taskfarm.get_task(run.uuid, 0) == Task(
        0, TaskState.DONE, FULL_PROGRESS, worker, 1, started=now
    )
    assert taskfarm.get_task(run.uuid, 1) == Task(1, TaskState.WAITING, 5, started=now)
    assert taskfarm.get_task(run.uuid, 2) == Task(2, TaskState.WAITING, 0, started=now)
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
    taskfarm: FarmService, worker: str, clock: FakeClock
) -> None:
    run = taskfarm.create_run(6)
    taskfarm.claim_tasks(run.uuid, worker, count=3)
    taskfarm.update_task(run.uuid, 2, TaskChange(progress=7, state=TaskState.WAITING))

    claimed = taskfarm.claim_tasks(run.uuid, worker, count=2)

    assert claimed == [
        Task(2, TaskState.COMPUTING, 7, worker, attempts=1, started=clock.now()),
        Task(3, TaskState.COMPUTING, 0, worker, attempts=1, started=clock.now()),
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
