"""Claims are exactly-once with many claimers at once: threads of one server, or server processes
each with its own connections to one SQLite file or PostgreSQL schema.

Claimers work as workers do: claim, then mark the task done (or hand it back), until a claim
finds nothing left.
"""

from __future__ import annotations

import collections
import multiprocessing
import threading
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.synchronize import Barrier as ProcessBarrier
from typing import Any

import attrs
import pytest

from taskfarm.bootstrap import open_storage
from taskfarm.domain import FULL_PROGRESS, RunCounters, TaskChange, TaskState
from taskfarm.ports import Storage
from tests.integration.conftest import SHARED_BACKENDS, StorageFactory

NUM_TASKS = 300
THREADS = 8
PROCESSES = 4
#: Every k-th task is handed back, half done, the first time it is claimed.
REQUEUE_EVERY = 7
HALF = FULL_PROGRESS // 2
WORK_SECONDS = 0.001
START_TIMEOUT = 60
FINISH_TIMEOUT = 120


@attrs.frozen
class Outcome:
    """What one claimer did: every index it was handed, and those it marked done."""

    claimed: list[int]
    finished: list[int]


def work_through(storage: Storage, run_uuid: str, worker: str, *, requeue: bool) -> Outcome:
    claimed: list[int] = []
    finished: list[int] = []
    while (task := storage.runs.claim(run_uuid, worker)) is not None:
        claimed.append(task.index)
        # The work itself. Without this pause, a process that holds SQLite's write lock takes
        # it again at once while the others poll: one would claim everything.
        time.sleep(WORK_SECONDS)
        # A requeued task comes back with its progress: the next claimer finishes it.
        if requeue and task.index % REQUEUE_EVERY == 0 and task.progress == 0:
            change = TaskChange(progress=HALF, state=TaskState.WAITING)
        else:
            change = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)
            finished.append(task.index)
        storage.runs.update_task(run_uuid, task.index, change)
    return Outcome(claimed, finished)


def in_threads(storage: Storage, run_uuid: str, *, requeue: bool) -> list[Outcome]:
    """THREADS claimers sharing one store, as the threads of one server process do."""
    start = threading.Barrier(THREADS)

    def claimer(number: int) -> Outcome:
        start.wait(timeout=START_TIMEOUT)
        return work_through(storage, run_uuid, f"thread-{number}", requeue=requeue)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(claimer, range(THREADS), timeout=FINISH_TIMEOUT))


def in_processes(url: str, run_uuid: str, *, requeue: bool) -> list[Outcome]:
    """PROCESSES claimers, each a process with its own store opened on `url`."""
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(
            target=_claimer_process,
            args=(url, run_uuid, f"process-{number}", requeue, start, results),
        )
        for number in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    try:
        reports = [results.get(timeout=FINISH_TIMEOUT) for _ in processes]
    finally:
        for process in processes:
            process.join(timeout=FINISH_TIMEOUT)
            if process.exitcode is None:
                process.kill()
    failures = [report for report in reports if isinstance(report, str)]
    assert not failures, "\n".join(failures)
    return [Outcome(*report) for report in reports]


def _claimer_process(
    url: str, run_uuid: str, worker: str, requeue: bool, start: ProcessBarrier, results: Any
) -> None:
    try:
        storage = open_storage(url)
        try:
            storage.runs.get_run(run_uuid)  # connected before the start, like a running server
            start.wait(timeout=START_TIMEOUT)
            outcome = work_through(storage, run_uuid, worker, requeue=requeue)
        finally:
            storage.close()
        results.put((outcome.claimed, outcome.finished))
    except BaseException:
        results.put(f"{worker} failed:\n{traceback.format_exc()}")


def assert_every_task_done_once(storage: Storage, run_uuid: str, outcomes: list[Outcome]) -> None:
    finished = collections.Counter(i for outcome in outcomes for i in outcome.finished)
    assert finished == collections.Counter(range(NUM_TASKS))
    tasks = [storage.runs.get_task(run_uuid, i) for i in range(NUM_TASKS)]
    assert {task.state for task in tasks} == {TaskState.DONE}
    run = storage.runs.get_run(run_uuid)
    assert run.counters == RunCounters.of(tasks)
    assert (run.num_done, run.num_computing, run.num_waiting) == (NUM_TASKS, 0, 0)


def assert_claimed_once(outcomes: list[Outcome]) -> None:
    claimed = collections.Counter(i for outcome in outcomes for i in outcome.claimed)
    assert claimed == collections.Counter(range(NUM_TASKS))
    # Several claimers really ran at once, or this test proves nothing.
    assert sum(1 for outcome in outcomes if outcome.claimed) > 1


def assert_requeued_claimed_twice(outcomes: list[Outcome]) -> None:
    claimed = collections.Counter(i for outcome in outcomes for i in outcome.claimed)
    assert claimed == collections.Counter(
        {i: 2 if i % REQUEUE_EVERY == 0 else 1 for i in range(NUM_TASKS)}
    )


Claimers = Callable[[StorageFactory, str, bool], list[Outcome]]


def threads(factory: StorageFactory, run_uuid: str, requeue: bool) -> list[Outcome]:
    return in_threads(factory(), run_uuid, requeue=requeue)


def processes(factory: StorageFactory, run_uuid: str, requeue: bool) -> list[Outcome]:
    assert factory.url is not None
    return in_processes(factory.url, run_uuid, requeue=requeue)


def test_threads_claim_every_task_exactly_once(storage_factory: StorageFactory) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS)
    outcomes = threads(storage_factory, run.uuid, False)
    assert_claimed_once(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_processes_claim_every_task_exactly_once(storage_factory: StorageFactory) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS)
    outcomes = processes(storage_factory, run.uuid, False)
    assert_claimed_once(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


def test_threads_finish_every_task_exactly_once_when_some_are_handed_back(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS)
    outcomes = threads(storage_factory, run.uuid, True)
    assert_requeued_claimed_twice(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_processes_finish_every_task_exactly_once_when_some_are_handed_back(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS)
    outcomes = processes(storage_factory, run.uuid, True)
    assert_requeued_claimed_twice(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


def test_claims_racing_out_of_order_writes_never_hand_out_a_stored_task(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS)
    # A writer marks every fourth task done, from the far end: some before the claimers
    # reach them (to be skipped), some after (already claimed, then finished twice over).
    written = list(range(NUM_TASKS - 1, -1, -4))
    start = threading.Barrier(THREADS + 1)

    def writer() -> dict[int, str | None]:
        """Who had each task when it was written: nobody, or the claimer it was handed to."""
        start.wait(timeout=START_TIMEOUT)
        change = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)
        return {i: storage.runs.update_task(run.uuid, i, change).worker for i in written}

    def claimer(number: int) -> Outcome:
        start.wait(timeout=START_TIMEOUT)
        return work_through(storage, run.uuid, f"thread-{number}", requeue=False)

    with ThreadPoolExecutor(THREADS + 1) as pool:
        writing = pool.submit(writer)
        outcomes = list(pool.map(claimer, range(THREADS), timeout=FINISH_TIMEOUT))
        holders = writing.result(timeout=FINISH_TIMEOUT)

    claimed_by = {i: f"thread-{n}" for n, outcome in enumerate(outcomes) for i in outcome.claimed}
    claimed = collections.Counter(i for outcome in outcomes for i in outcome.claimed)
    assert max(claimed.values()) == 1
    assert set(claimed) | set(written) == set(range(NUM_TASKS))
    # A task the writer stored first was never handed out; one it found claimed was handed
    # to the claimer holding it. Which came first varies from run to run.
    assert {i: claimed_by.get(i) for i in written} == holders
    tasks = [storage.runs.get_task(run.uuid, i) for i in range(NUM_TASKS)]
    assert {task.state for task in tasks} == {TaskState.DONE}
    assert storage.runs.get_run(run.uuid).counters == RunCounters.of(tasks)
