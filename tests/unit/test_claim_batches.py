"""Claims of one run that come while another is on its way to the store go there together
(`ClaimBatches`, through `FarmService.claim`), and each gets the tasks meant for it; a bad
claim fails alone."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import TypeVar

import pytest

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.memory.run_store import MemoryRunStore
from taskfarm.domain import (
    MAX_CLAIM_COUNT,
    InvalidInput,
    RunNotFound,
    StorageError,
    Task,
    Wanted,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.service import FarmService
from tests.fakes import FakeClock

T = TypeVar("T")
#: Long enough for every test here, on a busy machine.
TIMEOUT_SECONDS = 20
WORKERS = ["w0", "w1", "w2", "w3"]


class GatedRuns(MemoryRunStore):
    """Records each `claim_batch`; the first waits until `release` is set, so that
    claims queue up behind it."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.batches: list[list[Wanted]] = []
        self.in_first = asyncio.Event()
        self.release = asyncio.Event()
        self.fail_with: Exception | None = None

    async def claim_batch(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        self.batches.append(list(wanted))
        if len(self.batches) == 1:
            self.in_first.set()
            await self.release.wait()
        if self.fail_with is not None:
            raise self.fail_with
        return await super().claim_batch(run_uuid, wanted, now)


@pytest.fixture
def runs() -> GatedRuns:
    return GatedRuns()


@pytest.fixture
def taskfarm(runs: GatedRuns) -> Iterator[FarmService]:
    farm = FarmService(runs=runs, workers=MemoryStorage().workers, clock=FakeClock())
    for number, uuid in enumerate(WORKERS):
        farm.register_worker(WorkerRegistration(uuid, "node", number))
    yield farm
    farm.close()


def _run(main: Callable[[], Awaitable[T]]) -> T:
    return asyncio.run(asyncio.wait_for(main(), TIMEOUT_SECONDS))


def _indices(tasks: list[Task]) -> list[int]:
    return [task.index for task in tasks]


def test_claims_that_come_while_one_runs_go_together_in_order_of_arrival(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    run = taskfarm.create_run(100).uuid

    async def main() -> list[list[Task]]:
        first = asyncio.create_task(taskfarm.claim(run, "w0", 2))
        await runs.in_first.wait()
        following = []
        for worker, count in zip(WORKERS[1:], [1, 3, 2], strict=True):
            following.append(asyncio.create_task(taskfarm.claim(run, worker, count)))
            await asyncio.sleep(0)
        runs.release.set()
        return [await first, *[await claim for claim in following]]

    claimed = _run(main)

    assert [_indices(tasks) for tasks in claimed] == [[0, 1], [2], [3, 4, 5], [6, 7]]
    assert [task.worker for tasks in claimed for task in tasks] == [
        "w0", "w0", "w1", "w2", "w2", "w2", "w3", "w3"
    ]  # fmt: skip
    assert runs.batches == [
        [Wanted("w0", 2)],
        [Wanted("w1", 1), Wanted("w2", 3), Wanted("w3", 2)],
    ]


def test_a_batch_holds_at_most_the_tasks_one_claim_may_ask_for(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    run = taskfarm.create_run(10 * MAX_CLAIM_COUNT).uuid
    counts = [MAX_CLAIM_COUNT - 1, 1, 2, MAX_CLAIM_COUNT]

    async def main() -> list[list[Task]]:
        first = asyncio.create_task(taskfarm.claim(run, "w0", 1))
        await runs.in_first.wait()
        following = [asyncio.create_task(taskfarm.claim(run, "w1", count)) for count in counts]
        await asyncio.sleep(0)
        runs.release.set()
        return [await first, *[await claim for claim in following]]

    claimed = _run(main)

    assert [len(tasks) for tasks in claimed] == [1, *counts]
    assert [sum(w.count for w in batch) for batch in runs.batches] == [
        1, MAX_CLAIM_COUNT, 2, MAX_CLAIM_COUNT
    ]  # fmt: skip
    handed = [index for tasks in claimed for index in _indices(tasks)]
    assert handed == list(range(len(handed)))


def test_an_error_of_the_store_fails_every_claim_of_its_batch_and_no_later_one(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    run = taskfarm.create_run(100).uuid
    runs.fail_with = StorageError("the database is gone")

    async def main() -> None:
        first = asyncio.create_task(taskfarm.claim(run, "w0"))
        await runs.in_first.wait()
        second = asyncio.create_task(taskfarm.claim(run, "w1"))
        await asyncio.sleep(0)
        runs.release.set()
        for claim in (first, second):
            with pytest.raises(StorageError):
                await claim
        runs.fail_with = None
        assert _indices(await taskfarm.claim(run, "w2")) == [0]

    _run(main)
    assert len(runs.batches) == 3


def test_a_bad_claim_is_refused_before_it_waits_and_fails_no_other(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    run = taskfarm.create_run(100).uuid

    async def main() -> list[Task]:
        first = asyncio.create_task(taskfarm.claim(run, "w0"))
        await runs.in_first.wait()
        with pytest.raises(WorkerNotFound):
            await taskfarm.claim(run, "nobody")
        with pytest.raises(InvalidInput):
            await taskfarm.claim(run, "w1", MAX_CLAIM_COUNT + 1)
        with pytest.raises(RunNotFound):
            await taskfarm.claim("x" * 1000, "w1")
        runs.release.set()
        return await first

    assert _indices(_run(main)) == [0]
    assert runs.batches == [[Wanted("w0", 1)]]


def test_a_claim_on_a_run_that_does_not_exist_is_not_found(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    runs.release.set()

    async def main() -> None:
        with pytest.raises(RunNotFound):
            await taskfarm.claim("missing", "w0")

    _run(main)


def test_a_claim_whose_request_went_away_leaves_the_others_their_tasks(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    run = taskfarm.create_run(100).uuid

    async def main() -> list[list[Task]]:
        first = asyncio.create_task(taskfarm.claim(run, "w0"))
        await runs.in_first.wait()
        gone = asyncio.create_task(taskfarm.claim(run, "w1"))
        stays = asyncio.create_task(taskfarm.claim(run, "w2"))
        await asyncio.sleep(0)
        gone.cancel()
        runs.release.set()
        return [await first, await stays]

    assert [_indices(tasks) for tasks in _run(main)] == [[0], [2]]
    # The request that went away was claimed for: its task waits for its lease to run out.
    assert taskfarm.get_task(run, 1).worker == "w1"


def test_runs_are_claimed_apart_and_a_new_claim_after_a_quiet_spell_goes_alone(
    taskfarm: FarmService, runs: GatedRuns
) -> None:
    runs.release.set()
    one, other = (taskfarm.create_run(10).uuid for _ in range(2))

    async def main() -> list[list[Task]]:
        together = await asyncio.gather(taskfarm.claim(one, "w0"), taskfarm.claim(other, "w1"))
        return [*together, await taskfarm.claim(one, "w2")]

    assert [_indices(tasks) for tasks in _run(main)] == [[0], [0], [1]]
    assert sorted(map(len, runs.batches)) == [1, 1, 1]
