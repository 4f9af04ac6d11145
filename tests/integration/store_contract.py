"""What every store must do, shared by the contract suites (`test_store_*.py`), each run
against every backend behind the `Storage` port.

The memory store is the reference; the others must behave alike, counters included. Every
operation is handed its time, so leases run out when a test says, without sleeping.
"""

from __future__ import annotations

import datetime as dt
import uuid

from taskfarm.domain import (
    FULL_PROGRESS,
    Run,
    RunCounters,
    RunPolicy,
    Task,
    TaskChange,
    TaskState,
)
from taskfarm.ports import Storage
from tests.claiming import claim_tasks

WAITING, COMPUTING, DONE = TaskState.WAITING, TaskState.COMPUTING, TaskState.DONE
FAILED = TaskState.FAILED
HALF = FULL_PROGRESS // 2
NOW = dt.datetime(2024, 5, 17, 12, 30, 15, 250_000, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=30)
LEASED = RunPolicy(lease_seconds=30)
MICROSECOND = dt.timedelta(microseconds=1)


def new_run(storage: Storage, num_tasks: int, policy: RunPolicy | None = None) -> Run:
    return storage.runs.create_run(uuid.uuid4().hex, num_tasks, policy or RunPolicy())


def claim(
    storage: Storage, run: Run, worker: str = "w", count: int = 1, now: dt.datetime = NOW
) -> list[int]:
    """The indices one claim of up to `count` tasks hands out."""
    return [task.index for task in claim_tasks(storage, run.uuid, worker, now, count)]


def recount(storage: Storage, run: Run) -> RunCounters:
    """The counters from scratch, over every task of a (small) run."""
    return RunCounters.of(storage.runs.get_task(run.uuid, i) for i in range(run.num_tasks))


def counters_of(storage: Storage, run: Run) -> RunCounters:
    return storage.runs.get_run(run.uuid).counters


def claimed_indices(storage: Storage, run: Run, count: int, worker: str = "w") -> list[int | None]:
    claimed = [claim_tasks(storage, run.uuid, worker, NOW, 1) for _ in range(count)]
    return [tasks[0].index if tasks else None for tasks in claimed]


def put(
    storage: Storage,
    run: Run,
    index: int,
    progress: int | None = None,
    state: TaskState | None = None,
    *,
    by: str | None = None,
    now: dt.datetime = NOW,
) -> Task:
    change = TaskChange(progress=progress, state=state)
    return storage.runs.update_task(run.uuid, index, change, now, by)


def expire(storage: Storage, now: dt.datetime) -> int:
    return storage.runs.expire_leases(now)
