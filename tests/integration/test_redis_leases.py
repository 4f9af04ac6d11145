"""What only the Redis store has to get right: leases kept to the microsecond in sorted sets,
sweeps racing in several server processes, one cluster slot per run, and a bounded memory
cost per task."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.crc import key_slot

from taskfarm.adapters.redis import keys
from taskfarm.adapters.redis.run_store import EXPIRY_BATCH
from taskfarm.adapters.redis.storage import connect
from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_CLAIM_COUNT,
    Run,
    RunCounters,
    RunPolicy,
    Task,
    TaskChange,
    TaskState,
    WorkerRegistration,
)
from taskfarm.ports import Storage
from tests.claiming import claim_tasks
from tests.integration.conftest import REDIS_BACKENDS, StorageFactory

NOW = dt.datetime(2025, 3, 9, 8, 15, 30, 123_457, tzinfo=dt.UTC)
LEASE = 60
#: More than one script call's worth of expiries, so that sweepers race over several batches.
MANY_TASKS = 2 * EXPIRY_BATCH + 500
SWEEPERS = 4
#: Enough tasks that Redis stores them in hash tables and skip lists, as in a real run.
MEASURED_TASKS = 10_000
#: What a touched task may cost, and what it may cost more while it waits or is computed.
MAX_BYTES_PER_TASK = 128
MAX_BYTES_PER_QUEUED_TASK = 128
WORKER = "0f8fad5b-d9cb-469f-a165-70867728950e"

on_redis = pytest.mark.parametrize("storage_factory", REDIS_BACKENDS, indirect=True)
on_one_redis_server = pytest.mark.parametrize(
    "storage_factory", [pytest.param("redis", marks=pytest.mark.redis)], indirect=True
)


@pytest.fixture
def client(storage_factory: StorageFactory) -> Iterator[Any]:
    """A client of the store's database, to look at what the store wrote."""
    assert storage_factory.url is not None
    client = connect(storage_factory.url)
    yield client
    client.close()


def claim_all(storage: Storage, run: Run, now: dt.datetime = NOW) -> list[Task]:
    claimed: list[Task] = []
    while batch := claim_tasks(storage, run.uuid, WORKER, now, MAX_CLAIM_COUNT):
        claimed += batch
    return claimed


def all_keys(client: Any) -> set[str]:
    return set(client.scan_iter(count=1000))


def sweep_at_once(storage_factory: StorageFactory, now: dt.datetime) -> list[int]:
    """What each of several server processes' sweeps expired, all sweeping at the same time."""
    stores = [storage_factory() for _ in range(SWEEPERS)]
    start = threading.Barrier(SWEEPERS)

    def sweep(storage: Storage) -> int:
        start.wait()
        return storage.runs.expire_leases(now)

    with ThreadPoolExecutor(SWEEPERS) as pool:
        return list(pool.map(sweep, stores))


@on_redis
def test_a_lease_is_kept_to_the_microsecond(storage: Storage) -> None:
    run = storage.runs.create_run("run", 3, RunPolicy(lease_seconds=LEASE))
    expires = NOW + dt.timedelta(seconds=LEASE)
    [claimed] = claim_tasks(storage, run.uuid, WORKER, NOW, 1)
    assert claimed.lease_expires == expires
    assert storage.runs.get_task(run.uuid, 0) == claimed
    assert storage.runs.expire_leases(expires - dt.timedelta(microseconds=1)) == 0
    assert storage.runs.expire_leases(expires) == 1


@on_redis
def test_concurrent_sweepers_hand_back_each_expired_task_once(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", MANY_TASKS, RunPolicy(lease_seconds=LEASE))
    assert len(claim_all(storage, run)) == MANY_TASKS

    expired = sweep_at_once(storage_factory, NOW + dt.timedelta(seconds=LEASE))

    assert sum(expired) == MANY_TASKS
    assert storage.runs.get_run(run.uuid).counters == RunCounters()
    assert storage.runs.expire_leases(NOW + dt.timedelta(days=1)) == 0
    again = claim_all(storage, run, NOW + dt.timedelta(seconds=LEASE))
    assert [(task.index, task.attempts) for task in again] == [
        (index, 2) for index in range(MANY_TASKS)
    ]


@on_redis
def test_concurrent_sweepers_fail_each_task_out_of_attempts_once(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", MANY_TASKS, RunPolicy(lease_seconds=1, max_attempts=1))
    claim_all(storage, run)

    assert sum(sweep_at_once(storage_factory, NOW + dt.timedelta(seconds=1))) == MANY_TASKS

    assert storage.runs.get_run(run.uuid).counters == RunCounters(failed=MANY_TASKS)
    assert claim_tasks(storage, run.uuid, WORKER, NOW, 1) == []
    assert storage.runs.get_task(run.uuid, MANY_TASKS - 1) == Task(
        MANY_TASKS - 1, TaskState.FAILED, attempts=1, started=NOW
    )


@on_redis
def test_tasks_held_counts_computing_tasks_without_a_lease_too(storage: Storage) -> None:
    leased = storage.runs.create_run("leased", 5, RunPolicy(lease_seconds=LEASE))
    unleased = storage.runs.create_run("unleased", 5, RunPolicy())
    claim_tasks(storage, leased.uuid, "a", NOW, 2)
    claim_tasks(storage, unleased.uuid, "a", NOW, 3)
    claim_tasks(storage, unleased.uuid, "b", NOW, 1)
    storage.runs.update_task(unleased.uuid, 0, TaskChange(state=TaskState.DONE), NOW)
    assert dict(storage.runs.tasks_held()) == {"a": 4, "b": 1}


@given(uuid=st.text(min_size=1, max_size=64).filter(keys.is_run_uuid))
def test_every_key_of_a_run_hashes_to_one_cluster_slot(uuid: str) -> None:
    slots = {key_slot(key.encode()) for key in keys.RunKeys.of(uuid).all()}
    assert len(slots) == 1


@on_redis
def test_a_run_writes_no_key_but_its_own_and_the_indices(storage: Storage, client: Any) -> None:
    storage.workers.register(WorkerRegistration(WORKER, "host", 1), NOW)
    storage.workers.seen(WORKER, NOW)
    run = storage.runs.create_run("run", 10, RunPolicy(lease_seconds=1, max_attempts=2))
    claim_tasks(storage, run.uuid, WORKER, NOW, 4)
    storage.runs.update_task(run.uuid, 0, TaskChange(FULL_PROGRESS, TaskState.DONE), NOW)
    storage.runs.update_task(run.uuid, 1, TaskChange(state=TaskState.WAITING), NOW)
    storage.runs.update_task(run.uuid, 8, TaskChange(progress=5), NOW, WORKER)
    storage.runs.expire_leases(NOW + dt.timedelta(seconds=1))
    storage.runs.restart(run.uuid, everything=False)
    claim_tasks(storage, run.uuid, WORKER, NOW, 2)
    run_keys = set(keys.RunKeys.of("run").all())
    shared = {keys.RUN_INDEX, keys.LEASED_RUNS, keys.LAST_RUN_ID}
    shared |= {keys.worker(WORKER), keys.WORKER_INDEX, keys.LAST_WORKER_ID}
    assert all_keys(client) <= run_keys | shared

    storage.runs.delete_run("run")
    assert not all_keys(client) & run_keys
    assert client.smembers(keys.LEASED_RUNS) == set()


@on_one_redis_server
def test_a_touched_task_takes_about_a_hundred_bytes(
    storage_factory: StorageFactory, client: Any
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", 10**9, RunPolicy(lease_seconds=LEASE, max_attempts=3))
    run_keys = keys.RunKeys.of(run.uuid)

    def bytes_per_task(key: str) -> float:
        return float(client.memory_usage(key, samples=0) or 0) / MEASURED_TASKS

    for _ in range(MEASURED_TASKS // MAX_CLAIM_COUNT):
        claim_tasks(storage, run.uuid, WORKER, NOW, MAX_CLAIM_COUNT)
    assert bytes_per_task(run_keys.tasks) <= MAX_BYTES_PER_TASK
    assert bytes_per_task(run_keys.computing) <= MAX_BYTES_PER_QUEUED_TASK

    done = TaskChange(FULL_PROGRESS, TaskState.DONE)
    for index in range(MEASURED_TASKS):
        storage.runs.update_task(run.uuid, index, done, NOW, WORKER)
    assert bytes_per_task(run_keys.tasks) <= MAX_BYTES_PER_TASK
    assert bytes_per_task(run_keys.computing) == 0

    storage.runs.restart(run.uuid, everything=True)
    assert bytes_per_task(run_keys.tasks) <= MAX_BYTES_PER_TASK
    assert bytes_per_task(run_keys.waiting) <= MAX_BYTES_PER_QUEUED_TASK
