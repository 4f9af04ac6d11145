"""Claims are exactly-once with many claimers at once: threads of one server, or server processes
each with its own connections to one SQLite file or PostgreSQL schema.

Claimers work as workers do: claim, then mark the task done (or hand it back), until a claim
finds nothing left. With leases, some claimers die holding tasks, and a sweeper hands those
back once their lease runs out on a clock the test controls.
"""

from __future__ import annotations

import collections
import datetime as dt
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
from taskfarm.domain import (
    FULL_PROGRESS,
    Conflict,
    RunCounters,
    RunPolicy,
    Task,
    TaskChange,
    TaskState,
)
from taskfarm.ports import Storage
from tests.claiming import claim_tasks, leave_loops
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
NOW = dt.datetime(2025, 6, 1, 8, 0, tzinfo=dt.UTC)
DONE = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)


@attrs.frozen
class Outcome:
    """What one claimer did: every index it was handed, and those it marked done."""

    claimed: list[int]
    finished: list[int]


def work_through(storage: Storage, run_uuid: str, worker: str, *, requeue: bool) -> Outcome:
    claimed: list[int] = []
    finished: list[int] = []
    while claims := claim_tasks(storage, run_uuid, worker, NOW, 1):
        [task] = claims
        claimed.append(task.index)
        # The work itself. Without this pause, a process that holds SQLite's write lock takes
        # it again at once while the others poll: one would claim everything.
        time.sleep(WORK_SECONDS)
        # A requeued task comes back with its progress: the next claimer finishes it.
        if requeue and task.index % REQUEUE_EVERY == 0 and task.progress == 0:
            change = TaskChange(progress=HALF, state=TaskState.WAITING)
        else:
            change = DONE
            finished.append(task.index)
        storage.runs.update_task(run_uuid, task.index, change, NOW, worker)
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
            leave_loops(storage)
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
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy())
    outcomes = threads(storage_factory, run.uuid, False)
    assert_claimed_once(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_processes_claim_every_task_exactly_once(storage_factory: StorageFactory) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy())
    outcomes = processes(storage_factory, run.uuid, False)
    assert_claimed_once(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


def test_threads_finish_every_task_exactly_once_when_some_are_handed_back(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy())
    outcomes = threads(storage_factory, run.uuid, True)
    assert_requeued_claimed_twice(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_processes_finish_every_task_exactly_once_when_some_are_handed_back(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy())
    outcomes = processes(storage_factory, run.uuid, True)
    assert_requeued_claimed_twice(outcomes)
    assert_every_task_done_once(storage, run.uuid, outcomes)


def test_claims_racing_out_of_order_writes_never_hand_out_a_stored_task(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy())
    # A writer marks every fourth task done, from the far end: some before the claimers
    # reach them (to be skipped), some after (already claimed, then finished twice over).
    written = list(range(NUM_TASKS - 1, -1, -4))
    start = threading.Barrier(THREADS + 1)

    def writer() -> dict[int, str | None]:
        """Who had each task when it was written: nobody, or the claimer it was handed to."""
        start.wait(timeout=START_TIMEOUT)
        return {i: storage.runs.update_task(run.uuid, i, DONE, NOW).worker for i in written}

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


# Leases running out mid-run

#: Claimers that die holding tasks, the k-th once the others made DYING_AFTER * k claims, with
#: most of the run still to do: how many tasks each claims before it falls silent.
DYING_BATCHES = [1, 3, 5]
DYING_AFTER = 10
#: How many tasks a healthy claimer asks for at once.
BATCH = 3
#: Leases last this many claims, by anyone: several times what a healthy claimer needs to
#: finish a batch while the others claim theirs, and a third of the run.
LEASE_TICKS = 30
#: The sweeper sweeps every this many claims.
SWEEP_EVERY = 10
#: One claimer is late with every this many tasks: it reports once their lease ran out, at
#: moments spread over the interval between two sweeps, so that its reports race the sweeper.
LATE_EVERY = 4
POLL_SECONDS = 0.001


class ClaimClock:
    """Time counted in claims: every claim, by anyone, moves it one second on.

    Leases then run out after so many claims whatever the speed of the store, and the tasks
    of dead claimers come back as the living poll for more. Nothing sleeps for time to pass.
    """

    def __init__(self) -> None:
        self._ticks = 0
        self._ticked = threading.Condition()

    def now(self) -> dt.datetime:
        with self._ticked:
            return NOW + dt.timedelta(seconds=self._ticks)

    def tick(self) -> dt.datetime:
        """The time of one more claim."""
        with self._ticked:
            self._ticks += 1
            self._ticked.notify_all()
            return NOW + dt.timedelta(seconds=self._ticks)

    def wait_past(self, ticks: int, timeout: float) -> int:
        """Waits until the clock is past `ticks`, or for `timeout` seconds; the ticks now."""
        with self._ticked:
            self._ticked.wait_for(lambda: self._ticks > ticks, timeout=timeout)
            return self._ticks


@attrs.frozen
class LeasedOutcome:
    """What one claimer did: the tasks it was handed, those it finished, those it lost to
    another worker; and, for one that died, those it held then and the claim whose progress
    it reported before falling silent."""

    claimed: list[Task]
    finished: list[int]
    lost: list[int]
    abandoned: list[int] = attrs.Factory(list)
    reported: Task | None = None


def work_with_leases(
    storage: Storage, run_uuid: str, worker: str, clock: ClaimClock, *, late: bool = False
) -> LeasedOutcome:
    """Claims and finishes tasks until the run is done; a report refused because the task
    went to another worker is a task lost. A `late` claimer is late with some of its tasks."""
    deadline = time.monotonic() + FINISH_TIMEOUT
    claimed: list[Task] = []
    finished: list[int] = []
    lost: list[int] = []
    handled = 0
    while True:
        now = clock.tick()
        tasks = claim_tasks(storage, run_uuid, worker, now, BATCH)
        if not tasks:
            if storage.runs.get_run(run_uuid).num_done == NUM_TASKS:
                return LeasedOutcome(claimed, finished, lost)
            assert time.monotonic() < deadline, f"{worker} waited too long for expired tasks"
            time.sleep(POLL_SECONDS)
            continue
        claimed.extend(tasks)
        for task in tasks:
            time.sleep(WORK_SECONDS)
            handled += 1
            if late and handled % LATE_EVERY == 0:
                lease_end = (now - NOW) // dt.timedelta(seconds=1) + LEASE_TICKS
                past_end = handled // LATE_EVERY % SWEEP_EVERY
                clock.wait_past(lease_end + past_end, timeout=FINISH_TIMEOUT)
            try:
                storage.runs.update_task(run_uuid, task.index, DONE, clock.now(), worker)
            except Conflict:
                # Too slow: the lease ran out and the task went to another worker.
                lost.append(task.index)
            else:
                finished.append(task.index)


def claim_and_die(
    storage: Storage, run_uuid: str, worker: str, clock: ClaimClock, *, after: int, count: int
) -> LeasedOutcome:
    """Waits for `after` claims by others, claims `count` tasks, reports progress on the
    first and falls silent for good."""
    clock.wait_past(after - 1, timeout=FINISH_TIMEOUT)
    tasks = claim_tasks(storage, run_uuid, worker, clock.tick(), count)
    try:
        storage.runs.update_task(
            run_uuid, tasks[0].index, TaskChange(progress=HALF), clock.now(), worker
        )
    except Conflict:
        # Its claim waited so long for the store that its lease ran out at once.
        reported = None
    else:
        reported = tasks[0]
    return LeasedOutcome(tasks, [], [], [task.index for task in tasks], reported)


def sweep(storage: Storage, clock: ClaimClock, stop: threading.Event) -> list[int]:
    """What each server process does: hands back the tasks whose lease ran out, again and
    again, here every SWEEP_EVERY claims; how many each sweep handed back."""
    expired: list[int] = []
    swept = 0
    while not stop.is_set():
        ticks = clock.wait_past(swept + SWEEP_EVERY - 1, timeout=0.05)
        if ticks >= swept + SWEEP_EVERY:
            swept = ticks
            expired.append(storage.runs.expire_leases(clock.now()))
    return expired


def test_tasks_of_claimers_that_die_are_handed_out_again_once_and_every_task_is_done_once(
    storage_factory: StorageFactory,
) -> None:
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy(lease_seconds=LEASE_TICKS))
    clock = ClaimClock()
    healthy = THREADS - len(DYING_BATCHES)
    start = threading.Barrier(THREADS)
    stop = threading.Event()

    def claimer(number: int) -> LeasedOutcome:
        start.wait(timeout=START_TIMEOUT)
        worker = f"thread-{number}"
        if number < healthy:
            return work_with_leases(storage, run.uuid, worker, clock, late=number == 0)
        dying = number - healthy
        return claim_and_die(
            storage,
            run.uuid,
            worker,
            clock,
            after=DYING_AFTER * dying,
            count=DYING_BATCHES[dying],
        )

    with ThreadPoolExecutor(THREADS + 1) as pool:
        sweeping = pool.submit(sweep, storage_factory(), clock, stop)
        try:
            outcomes = list(pool.map(claimer, range(THREADS), timeout=FINISH_TIMEOUT))
        finally:
            stop.set()
        expired = sum(sweeping.result(timeout=FINISH_TIMEOUT))

    every_claim = {(task.index, task.attempts): task for o in outcomes for task in o.claimed}
    claims = collections.Counter(task.index for o in outcomes for task in o.claimed)
    abandoned = collections.Counter(i for o in outcomes for i in o.abandoned)
    # The dead held what they claimed, mid-run: every one of those tasks expired and went to
    # another claimer, who resumed from the progress reported before the silence.
    assert abandoned.total() == sum(DYING_BATCHES)
    assert all(claims[i] > times for i, times in abandoned.items())
    for reported in (o.reported for o in outcomes if o.reported is not None):
        resumed = every_claim.get((reported.index, reported.attempts + 1))
        assert resumed is not None
        assert resumed.progress == HALF
    # A task goes out again only after its lease ran out, to one claimer at a time: each
    # claim of a task counts one more attempt, none is counted twice.
    assert len(every_claim) == claims.total()
    assert set(claims) == set(range(NUM_TASKS))
    assert abandoned.total() <= claims.total() - NUM_TASKS <= expired
    # Every task was finished once: by the claimer holding it, or, lease run out and nobody
    # else holding it yet, by the one that was late. Every other late report was refused.
    finished = collections.Counter(i for o in outcomes for i in o.finished)
    assert finished == collections.Counter(range(NUM_TASKS))
    tasks = [storage.runs.get_task(run.uuid, i) for i in range(NUM_TASKS)]
    assert {task.state for task in tasks} == {TaskState.DONE}
    assert [task.attempts for task in tasks] == [claims[i] for i in range(NUM_TASKS)]
    run_now = storage.runs.get_run(run.uuid)
    assert run_now.counters == RunCounters.of(tasks)
    assert (run_now.num_done, run_now.num_computing, run_now.num_failed) == (NUM_TASKS, 0, 0)
    assert dict(storage.runs.tasks_held()) == {}


FAILS_ONCE_EVERY = 5


def test_retries_racing_claims_hand_each_failed_task_out_once_more(
    storage_factory: StorageFactory,
) -> None:
    """Every fifth task fails at its first attempt, its one attempt: a retrier puts the failed
    tasks back again and again while the claimers go on. Each task that failed is claimed
    exactly once more, and every task is done once."""
    storage = storage_factory()
    run = storage.runs.create_run("run", NUM_TASKS, RunPolicy(max_attempts=1))
    failed_once: set[int] = set()
    lock = threading.Lock()
    claimers_done = threading.Event()

    def claimer(number: int) -> Outcome:
        claimed: list[int] = []
        finished: list[int] = []
        worker = f"thread-{number}"
        while claims := claim_tasks(storage, run.uuid, worker, NOW, 1):
            [task] = claims
            claimed.append(task.index)
            time.sleep(WORK_SECONDS)
            with lock:
                fails = task.index % FAILS_ONCE_EVERY == 0 and task.index not in failed_once
                failed_once.add(task.index)
            change = TaskChange(state=TaskState.FAILED, exit_code=1) if fails else DONE
            storage.runs.update_task(run.uuid, task.index, change, NOW, worker)
            if not fails:
                finished.append(task.index)
        return Outcome(claimed, finished)

    def retrier() -> int:
        retried = 0
        while not claimers_done.is_set():
            retried += storage.runs.retry(run.uuid, None)
            time.sleep(WORK_SECONDS)
        return retried

    with ThreadPoolExecutor(THREADS + 1) as pool:
        retrying = pool.submit(retrier)
        claiming = [pool.submit(claimer, number) for number in range(THREADS)]
        outcomes = [future.result(timeout=FINISH_TIMEOUT) for future in claiming]
        claimers_done.set()
        retried = retrying.result(timeout=FINISH_TIMEOUT)
    # The failures the retrier did not see before the claimers ran out of tasks.
    retried += storage.runs.retry(run.uuid, None)
    outcomes.append(claimer(THREADS))

    failing = {i for i in range(NUM_TASKS) if i % FAILS_ONCE_EVERY == 0}
    assert retried == len(failing)
    claimed = collections.Counter(i for outcome in outcomes for i in outcome.claimed)
    assert claimed == collections.Counter({i: 2 if i in failing else 1 for i in range(NUM_TASKS)})
    assert_every_task_done_once(storage, run.uuid, outcomes)
