"""Expiring leases in SQL while other server processes sweep, claim and update at the same time.

Each store opened by `storage_factory` has connections of its own, as a server process does.
Time is given, not read from a clock: claims lease their tasks from `START`, and sweeps look
at `LATER`, when every lease taken at `START` has run out.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import TypeVar

import pytest
import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy import tables
from taskfarm.domain import Conflict, RunCounters, RunPolicy, Task, TaskChange, TaskState
from taskfarm.ports import Storage
from tests.claiming import claim_tasks
from tests.integration.conftest import SQL_BACKENDS, StorageFactory

LEASE_SECONDS = 10
START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
LATER = START + dt.timedelta(seconds=LEASE_SECONDS)
#: Together more tasks than one batch of a sweep hands back (500), spread over several runs.
NUM_RUNS = 3
TASKS_PER_RUN = 300
SWEEPERS = 4
CLAIMERS = 4
CLAIM_ROUNDS = 40
TIMEOUT = 120

T = TypeVar("T")

sql_backends = pytest.mark.parametrize("storage_factory", SQL_BACKENDS, indirect=True)
postgres_only = pytest.mark.parametrize(
    "storage_factory", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)


def all_at_once(workers: list[Callable[[], T]]) -> list[T]:
    """Runs each function in a thread of its own, all starting together."""
    start = threading.Barrier(len(workers))

    def run(work: Callable[[], T]) -> T:
        start.wait(timeout=TIMEOUT)
        return work()

    with ThreadPoolExecutor(len(workers)) as pool:
        return list(pool.map(run, workers, timeout=TIMEOUT))


def tasks_of(storage: Storage, run_uuid: str) -> list[Task]:
    num_tasks = storage.runs.get_run(run_uuid).num_tasks
    return [storage.runs.get_task(run_uuid, index) for index in range(num_tasks)]


def assert_counters_are_a_recount(storage: Storage, run_uuid: str) -> None:
    assert storage.runs.get_run(run_uuid).counters == RunCounters.of(tasks_of(storage, run_uuid))


def claim_everything(storage: Storage, run_uuid: str, worker: str, now: dt.datetime) -> int:
    claimed = 0
    while batch := claim_tasks(storage, run_uuid, worker, now, 1000):
        claimed += len(batch)
    return claimed


@sql_backends
def test_concurrent_sweeps_hand_each_expired_task_back_once(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    policy = RunPolicy(lease_seconds=LEASE_SECONDS, max_attempts=2)
    run_uuids = [f"run-{number}" for number in range(NUM_RUNS)]
    for run_uuid in run_uuids:
        storage.runs.create_run(run_uuid, TASKS_PER_RUN, policy)
        claim_everything(storage, run_uuid, "silent", START)
    sweepers = [storage_factory() for _ in range(SWEEPERS)]

    expired = all_at_once([partial(sweeper.runs.expire_leases, LATER) for sweeper in sweepers])

    assert sum(expired) == NUM_RUNS * TASKS_PER_RUN
    for run_uuid in run_uuids:
        assert {task.state for task in tasks_of(storage, run_uuid)} == {TaskState.WAITING}
        assert_counters_are_a_recount(storage, run_uuid)
        assert storage.runs.get_run(run_uuid).num_waiting == TASKS_PER_RUN
    assert storage.runs.expire_leases(LATER) == 0


@sql_backends
def test_concurrent_sweeps_fail_each_task_out_of_attempts_once(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", TASKS_PER_RUN, RunPolicy(LEASE_SECONDS, max_attempts=1))
    claim_everything(storage, run.uuid, "silent", START)
    sweepers = [storage_factory() for _ in range(SWEEPERS)]

    expired = all_at_once([partial(sweeper.runs.expire_leases, LATER) for sweeper in sweepers])

    assert sum(expired) == TASKS_PER_RUN
    assert {task.state for task in tasks_of(storage, run.uuid)} == {TaskState.FAILED}
    assert_counters_are_a_recount(storage, run.uuid)
    assert storage.runs.get_run(run.uuid).num_failed == TASKS_PER_RUN
    assert claim_tasks(storage, run.uuid, "next", LATER, 1) == []


@sql_backends
def test_every_claim_ends_in_exactly_one_expiry_while_sweeps_and_heartbeats_race_it(
    storage_factory: StorageFactory,
) -> None:
    """Claimers take tasks, heartbeat some, and never finish one; sweepers hand them back.

    Every lease is taken at START and every sweep looks at LATER, so each claim's lease has run
    out by the time a sweep sees it: every claim must end in exactly one expiry, and each task
    must count as many attempts as it was claimed.
    """
    storage = storage_factory()
    run = storage.runs.create_run("run", 200, RunPolicy(lease_seconds=LEASE_SECONDS))
    claims_done = threading.Event()

    def claimer(number: int) -> collections.Counter[int]:
        store = storage_factory()
        worker = f"worker-{number}"
        claimed: collections.Counter[int] = collections.Counter()
        for _ in range(CLAIM_ROUNDS):
            batch = claim_tasks(store, run.uuid, worker, START, 7)
            claimed.update(task.index for task in batch)
            for task in batch[::2]:
                # Conflict: expired, then claimed by another worker; no longer this one's.
                with contextlib.suppress(Conflict):
                    store.runs.update_task(run.uuid, task.index, TaskChange(), START, worker)
        return claimed

    def sweeper() -> int:
        store = storage_factory()
        expired = 0
        while not claims_done.is_set():
            expired += store.runs.expire_leases(LATER)
        return expired

    with ThreadPoolExecutor(CLAIMERS + SWEEPERS) as pool:
        sweeps = [pool.submit(sweeper) for _ in range(SWEEPERS)]
        claims = [pool.submit(claimer, number) for number in range(CLAIMERS)]
        claimed = sum((future.result(timeout=TIMEOUT) for future in claims), collections.Counter())
        claims_done.set()
        expired = sum(future.result(timeout=TIMEOUT) for future in sweeps)
    expired += storage.runs.expire_leases(LATER)

    assert expired == claimed.total()
    tasks = tasks_of(storage, run.uuid)
    assert {task.state for task in tasks} == {TaskState.WAITING}
    assert {task.index: task.attempts for task in tasks if task.attempts} == dict(claimed)
    assert_counters_are_a_recount(storage, run.uuid)
    # The sweeps really ran between claims, or this test proves nothing.
    assert max(claimed.values()) > 1


@postgres_only
def test_a_sweep_skips_a_task_another_transaction_holds_without_waiting_for_it(
    storage_factory: StorageFactory,
) -> None:
    assert storage_factory.url is not None
    storage = storage_factory()
    run = storage.runs.create_run("run", 3, RunPolicy(lease_seconds=LEASE_SECONDS))
    claim_everything(storage, run.uuid, "silent", START)
    engine = sa.create_engine(storage_factory.url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as holder:
            holder.execute(
                sa.select(tables.tasks.c.idx).where(tables.tasks.c.idx == 1).with_for_update()
            )
            assert storage.runs.expire_leases(LATER) == 2
            assert storage.runs.get_task(run.uuid, 1).state is TaskState.COMPUTING
        assert storage.runs.expire_leases(LATER) == 1
    finally:
        engine.dispose()
    assert {task.state for task in tasks_of(storage, run.uuid)} == {TaskState.WAITING}
    assert_counters_are_a_recount(storage, run.uuid)


@sql_backends
def test_tasks_held_counts_the_computing_tasks_of_each_worker_across_runs(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    policy = RunPolicy(lease_seconds=LEASE_SECONDS)
    for run_uuid in ("run-a", "run-b"):
        storage.runs.create_run(run_uuid, 10, policy)
        claim_tasks(storage, run_uuid, "busy", START, 4)
        claim_tasks(storage, run_uuid, "idle", START, 1)
        storage.runs.update_task(run_uuid, 4, TaskChange(state=TaskState.DONE), START, "idle")
    storage.runs.update_task("run-a", 0, TaskChange(state=TaskState.WAITING), START, "busy")
    # A computing task a person wrote, for no worker, is nobody's.
    storage.runs.update_task("run-b", 9, TaskChange(state=TaskState.COMPUTING), START)
    assert dict(storage.runs.tasks_held()) == {"busy": 7}
    storage.runs.expire_leases(LATER)
    assert dict(storage.runs.tasks_held()) == {}


@sql_backends
def test_counters_stay_a_recount_while_sweeps_race_every_other_kind_of_write(
    storage_factory: StorageFactory,
) -> None:
    """Claims, updates by workers and by people, restarts and sweeps on two runs at once, each
    from a store of its own: none may fail (a deadlock would, after its retries), and every
    run's counters must end equal to a recount of its tasks."""
    storage = storage_factory()
    policy = RunPolicy(lease_seconds=LEASE_SECONDS, max_attempts=3)
    run_uuids = [storage.runs.create_run(f"run-{n}", 150, policy).uuid for n in range(2)]
    writes_done = threading.Event()

    def claimer(number: int) -> None:
        store = storage_factory()
        worker = f"worker-{number}"
        for round_ in range(CLAIM_ROUNDS):
            run_uuid = run_uuids[round_ % len(run_uuids)]
            for task in claim_tasks(store, run_uuid, worker, START, 5):
                state = TaskState.DONE if task.index % 3 == 0 else TaskState.COMPUTING
                change = TaskChange(progress=task.index * 1000, state=state)
                with contextlib.suppress(Conflict):
                    store.runs.update_task(run_uuid, task.index, change, START, worker)

    def person() -> None:
        store = storage_factory()
        for round_ in range(CLAIM_ROUNDS):
            run_uuid = run_uuids[round_ % len(run_uuids)]
            index = 149 - round_
            store.runs.update_task(run_uuid, index, TaskChange(state=TaskState.COMPUTING), START)
            if round_ % 10 == 9:
                store.runs.restart(run_uuid, everything=round_ % 20 == 19)

    def sweeper() -> None:
        store = storage_factory()
        while not writes_done.is_set():
            store.runs.expire_leases(LATER)

    with ThreadPoolExecutor(CLAIMERS + 1 + SWEEPERS) as pool:
        sweeps = [pool.submit(sweeper) for _ in range(SWEEPERS)]
        writes = [pool.submit(claimer, number) for number in range(CLAIMERS)]
        writes.append(pool.submit(person))
        for future in writes:
            future.result(timeout=TIMEOUT)
        writes_done.set()
        for future in sweeps:
            future.result(timeout=TIMEOUT)

    for run_uuid in run_uuids:
        assert_counters_are_a_recount(storage, run_uuid)
    storage.runs.expire_leases(LATER)
    for run_uuid in run_uuids:
        assert_counters_are_a_recount(storage, run_uuid)
        assert storage.runs.get_run(run_uuid).num_computing == 0
