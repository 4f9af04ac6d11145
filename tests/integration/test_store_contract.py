"""What every store must do: one suite, run against each backend behind the `Storage` port.

The memory store is the reference; the others must behave alike, counters included.
"""

from __future__ import annotations

import datetime as dt
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
    Task,
    TaskChange,
    TaskNotFound,
    TaskState,
    UserNotFound,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.ports import Storage
from tests.integration.conftest import StorageFactory
from tests.stateful import store_machine

WAITING, COMPUTING, DONE = TaskState.WAITING, TaskState.COMPUTING, TaskState.DONE
HALF = FULL_PROGRESS // 2
NOW = dt.datetime(2024, 5, 17, 12, 30, 15, 250_000, tzinfo=dt.UTC)


def new_run(storage: Storage, num_tasks: int) -> Run:
    return storage.runs.create_run(uuid.uuid4().hex, num_tasks)


def recount(storage: Storage, run: Run) -> RunCounters:
    """The counters from scratch, over every task of a (small) run."""
    return RunCounters.of(storage.runs.get_task(run.uuid, i) for i in range(run.num_tasks))


def counters_of(storage: Storage, run: Run) -> RunCounters:
    return storage.runs.get_run(run.uuid).counters


def claimed_indices(storage: Storage, run: Run, count: int, worker: str = "w") -> list[int | None]:
    claimed = [storage.runs.claim(run.uuid, worker) for _ in range(count)]
    return [None if task is None else task.index for task in claimed]


def put(
    storage: Storage,
    run: Run,
    index: int,
    progress: int | None = None,
    state: TaskState | None = None,
) -> Task:
    return storage.runs.update_task(run.uuid, index, TaskChange(progress=progress, state=state))


# Runs


def test_a_new_run_has_every_task_waiting_and_no_progress(storage: Storage) -> None:
    run = storage.runs.create_run("run-a", 7)
    assert (run.uuid, run.num_tasks, run.frontier) == ("run-a", 7, 0)
    assert (run.num_waiting, run.num_computing, run.num_done, run.percent_done) == (7, 0, 0, 0.0)
    assert storage.runs.get_run("run-a") == run


def test_runs_are_listed_in_the_order_they_were_created(storage: Storage) -> None:
    created = [storage.runs.create_run(name, 3) for name in ["c", "a", "b"]]
    assert list(storage.runs.list_runs()) == created
    assert len({run.id for run in created}) == 3


def test_a_run_of_a_billion_tasks_is_created_and_used_at_once(storage: Storage) -> None:
    started = time.perf_counter()
    run = new_run(storage, 10**9)
    last = 10**9 - 1
    assert storage.runs.get_run(run.uuid).num_waiting == 10**9
    assert storage.runs.claim(run.uuid, "w") == Task(0, COMPUTING, 0, "w")
    assert put(storage, run, last, FULL_PROGRESS, DONE) == Task(last, DONE, FULL_PROGRESS)
    assert storage.runs.get_task(run.uuid, last - 1) == Task.untouched(last - 1)
    storage.runs.restart(run.uuid, everything=True)
    assert storage.runs.get_run(run.uuid).num_waiting == 10**9
    storage.runs.delete_run(run.uuid)
    assert time.perf_counter() - started < 2.0


def test_a_deleted_run_is_gone_with_its_tasks(storage: Storage) -> None:
    run = storage.runs.create_run("doomed", 4)
    claimed_indices(storage, run, 2)
    put(storage, run, 3, FULL_PROGRESS, DONE)
    other = new_run(storage, 2)

    storage.runs.delete_run("doomed")

    with pytest.raises(RunNotFound):
        storage.runs.get_run("doomed")
    assert list(storage.runs.list_runs()) == [other]
    reborn = storage.runs.create_run("doomed", 4)
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
        lambda s: s.runs.claim("nope", "w"),
        lambda s: s.runs.get_task("nope", 0),
        lambda s: s.runs.update_task("nope", 0, TaskChange(state=DONE)),
        lambda s: s.runs.restart("nope", everything=False),
    ],
    ids=["get_run", "delete_run", "claim", "get_task", "update_task", "restart"],
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
    claimed = storage.runs.claim(run.uuid, "worker-1")
    assert claimed == Task(0, COMPUTING, 0, "worker-1")
    assert storage.runs.get_task(run.uuid, 0) == claimed


def test_requeued_tasks_go_out_first_lowest_index_first(storage: Storage) -> None:
    run = new_run(storage, 10)
    claimed_indices(storage, run, 5)
    put(storage, run, 3, state=WAITING)
    put(storage, run, 1, state=WAITING)
    assert claimed_indices(storage, run, 3) == [1, 3, 5]


def test_a_requeued_task_keeps_its_progress_for_its_next_worker(storage: Storage) -> None:
    run = new_run(storage, 2)
    storage.runs.claim(run.uuid, "first")
    put(storage, run, 0, HALF, WAITING)
    assert storage.runs.claim(run.uuid, "second") == Task(0, COMPUTING, HALF, "second")


def test_claims_skip_tasks_written_out_of_order(storage: Storage) -> None:
    run = new_run(storage, 6)
    put(storage, run, 1, FULL_PROGRESS, DONE)
    put(storage, run, 2, HALF, COMPUTING)
    put(storage, run, 5, FULL_PROGRESS, DONE)
    assert claimed_indices(storage, run, 4) == [0, 3, 4, None]


def test_a_waiting_task_written_past_the_frontier_is_requeued(storage: Storage) -> None:
    run = new_run(storage, 6)
    put(storage, run, 4, HALF)
    assert claimed_indices(storage, run, 7) == [4, 0, 1, 2, 3, 5, None]


def test_claims_return_none_once_every_task_is_done(storage: Storage) -> None:
    run = new_run(storage, 2)
    for index in claimed_indices(storage, run, 2):
        assert index is not None
        put(storage, run, index, FULL_PROGRESS, DONE)
    assert storage.runs.claim(run.uuid, "w") is None
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
    storage.runs.claim(run.uuid, "w")
    assert put(storage, run, 0, progress=HALF) == Task(0, COMPUTING, HALF, "w")
    assert put(storage, run, 0, state=DONE) == Task(0, DONE, HALF, "w")
    assert storage.runs.get_task(run.uuid, 0) == Task(0, DONE, HALF, "w")


def test_a_task_set_back_to_waiting_belongs_to_no_worker(storage: Storage) -> None:
    run = new_run(storage, 3)
    storage.runs.claim(run.uuid, "w")
    assert put(storage, run, 0, HALF, WAITING) == Task(0, WAITING, HALF, None)
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
        Task(2, DONE, FULL_PROGRESS, "w"),
        Task(3, COMPUTING, FULL_PROGRESS, "w"),
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


# Any view of the store


def test_every_store_opened_on_one_database_sees_the_same_data(
    storage_factory: StorageFactory,
) -> None:
    first, second = storage_factory(), storage_factory()
    run = new_run(first, 3)
    first.runs.claim(run.uuid, "w")
    assert second.runs.claim(run.uuid, "w") == Task(1, COMPUTING, 0, "w")
    assert first.runs.get_run(run.uuid) == second.runs.get_run(run.uuid)


def test_creating_the_schema_again_keeps_the_data(storage: Storage) -> None:
    run = new_run(storage, 3)
    storage.create_schema()
    assert storage.runs.get_run(run.uuid) == run


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
