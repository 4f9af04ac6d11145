"""What every store must do with runs: create, list, delete, count, restart, keep their policy;
one suite, run against each backend behind the `Storage` port (the memory store is the
reference).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from taskfarm.domain import (
    FULL_PROGRESS,
    Conflict,
    InputKind,
    RunCounters,
    RunInputs,
    RunNotFound,
    RunPolicy,
    Sweep,
    Task,
    TaskChange,
    Wanted,
)
from taskfarm.domain.policy import MAX_ATTEMPTS, MAX_LEASE_SECONDS
from taskfarm.ports import Storage
from tests.claiming import claim_batch, claim_tasks
from tests.integration.conftest import StorageFactory
from tests.integration.store_contract import (
    COMPUTING,
    DONE,
    FAILED,
    HALF,
    LEASED,
    NOW,
    WAITING,
    claim,
    claimed_indices,
    counters_of,
    new_run,
    put,
    recount,
)

# Runs


def test_a_new_run_has_every_task_waiting_and_no_progress(storage: Storage) -> None:
    run = storage.runs.create_run("run-a", 7, RunPolicy())
    assert (run.uuid, run.num_tasks, run.frontier, run.policy) == ("run-a", 7, 0, RunPolicy())
    assert (run.num_waiting, run.num_computing, run.num_done, run.num_failed) == (7, 0, 0, 0)
    assert run.percent_done == 0.0
    assert storage.runs.get_run("run-a") == run


def test_a_run_keeps_its_name_and_creation_time_and_is_found_by_its_name(
    storage: Storage,
) -> None:
    run = storage.runs.create_run("run-n", 2, RunPolicy(), name="sweep.v1", created=NOW)
    assert (run.name, run.created) == ("sweep.v1", NOW)
    assert storage.runs.get_run("run-n") == run
    assert storage.runs.named_run("sweep.v1") == "run-n"
    assert [listed.name for listed in storage.runs.list_runs()] == ["sweep.v1"]


def test_a_name_belongs_to_one_run_at_a_time(storage: Storage) -> None:
    storage.runs.create_run("first", 1, RunPolicy(), name="nightly")
    with pytest.raises(Conflict, match="already a run called 'nightly'"):
        storage.runs.create_run("second", 1, RunPolicy(), name="nightly")
    with pytest.raises(RunNotFound):
        storage.runs.get_run("second")
    # Runs without a name never clash.
    storage.runs.create_run("third", 1, RunPolicy())
    storage.runs.create_run("fourth", 1, RunPolicy())

    storage.runs.delete_run("first")
    with pytest.raises(RunNotFound):
        storage.runs.named_run("nightly")
    storage.runs.create_run("fifth", 1, RunPolicy(), name="nightly")
    assert storage.runs.named_run("nightly") == "fifth"


def test_a_run_made_with_a_uuid_taken_does_not_take_its_name(storage: Storage) -> None:
    storage.runs.create_run("taken", 1, RunPolicy())
    with pytest.raises(Conflict, match="uuid 'taken'"):
        storage.runs.create_run("taken", 1, RunPolicy(), name="spare")
    with pytest.raises(RunNotFound):
        storage.runs.named_run("spare")
    assert storage.runs.create_run("other", 1, RunPolicy(), name="spare").name == "spare"


def test_a_run_of_stored_inputs_finds_those_staged_before_it(storage: Storage) -> None:
    storage.runs.stage_inputs("run-i", 0, ['"a"', '{"x":1}'])
    storage.runs.stage_inputs("run-i", 2, ["3"])
    run = storage.runs.create_run("run-i", 3, RunPolicy(), inputs=RunInputs(InputKind.JSON))

    assert storage.runs.get_run("run-i").inputs is run.inputs is InputKind.JSON
    assert storage.runs.task_inputs("run-i", [2, 0, 1, 7]) == ["3", '"a"', '{"x":1}', None]
    storage.runs.delete_run("run-i")
    storage.runs.create_run("run-i", 3, RunPolicy())
    assert storage.runs.task_inputs("run-i", [0, 1]) == [None, None]


def test_staged_inputs_discarded_are_not_found_by_a_later_run(storage: Storage) -> None:
    storage.runs.stage_inputs("run-d", 0, ['"lost"'])
    storage.runs.discard_inputs("run-d")
    storage.runs.create_run("run-d", 1, RunPolicy(), inputs=RunInputs(InputKind.LINES))
    assert storage.runs.task_inputs("run-d", [0]) == [None]


def test_a_sweep_is_kept_as_its_axes(storage: Storage) -> None:
    sweep = Sweep.from_fields({"seed": list(range(1000)), "model": ["a", "b"]})
    run = storage.runs.create_run("run-s", sweep.size, RunPolicy(), inputs=RunInputs.swept(sweep))

    assert (run.num_tasks, run.inputs) == (2000, InputKind.SWEEP)
    assert storage.runs.run_sweep("run-s") == sweep
    with pytest.raises(RunNotFound):
        storage.runs.run_sweep("run-a-without-one")


def test_runs_are_listed_in_the_order_they_were_created(storage: Storage) -> None:
    created = [storage.runs.create_run(name, 3, RunPolicy()) for name in ["c", "a", "b"]]
    assert list(storage.runs.list_runs()) == created
    assert len({run.id for run in created}) == 3


def test_a_run_of_a_billion_tasks_is_created_and_used_at_once(storage: Storage) -> None:
    started = time.perf_counter()
    run = new_run(storage, 10**9)
    last = 10**9 - 1
    assert storage.runs.get_run(run.uuid).num_waiting == 10**9
    assert claim_tasks(storage, run.uuid, "w", NOW, 1) == [
        Task(0, COMPUTING, 0, "w", 1, started=NOW)
    ]
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
        lambda s: claim_tasks(s, "nope", "w", NOW, 3),
        lambda s: claim_batch(s, "nope", [Wanted("w", 1), Wanted("v", 2)], NOW),
        lambda s: s.runs.get_task("nope", 0),
        lambda s: s.runs.update_task("nope", 0, TaskChange(state=DONE), NOW),
        lambda s: s.runs.update_task("nope", 0, TaskChange(), NOW, "w"),
        lambda s: s.runs.restart("nope", everything=False),
        lambda s: s.runs.holders("nope"),
        lambda s: s.runs.requeued_tasks("nope", 10),
        lambda s: s.runs.list_tasks("nope", FAILED, -1, 10),
    ],
    ids=[
        "get_run",
        "delete_run",
        "claim_one",
        "claim_batch",
        "get_task",
        "update_task",
        "heartbeat",
        "restart",
        "holders",
        "requeued_tasks",
        "list_failed_tasks",
    ],
)
def test_every_operation_on_an_unknown_run_raises_run_not_found(
    storage: Storage, operation: Callable[[Storage], object]
) -> None:
    new_run(storage, 3)
    with pytest.raises(RunNotFound):
        operation(storage)


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
        Task(0, WAITING, 0, started=NOW),
        Task(1, WAITING, HALF, started=NOW),
        Task(2, DONE, FULL_PROGRESS, "w", 1, started=NOW),
        Task(3, COMPUTING, FULL_PROGRESS, "w", 1, started=NOW),
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
    assert claim_tasks(second, run.uuid, "w", NOW, 1) == [
        Task(1, COMPUTING, 0, "w", 1, started=NOW)
    ]
    assert first.runs.get_run(run.uuid) == second.runs.get_run(run.uuid)
    assert dict(first.runs.tasks_held()) == dict(second.runs.tasks_held()) == {"w": 2}


def test_creating_the_schema_again_keeps_the_data(storage: Storage) -> None:
    run = new_run(storage, 3, RunPolicy(lease_seconds=30, max_attempts=2))
    [task] = claim_tasks(storage, run.uuid, "w", NOW, 1)
    storage.create_schema()
    assert storage.runs.get_task(run.uuid, 0) == task
    assert storage.runs.get_run(run.uuid).policy == run.policy
