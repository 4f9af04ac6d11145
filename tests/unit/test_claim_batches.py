"""Claims of one run that wait together in a server process are sent together, and each gets
the tasks meant for it."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

import pytest

from taskfarm.adapters.sqlalchemy.claim_batches import MAX_SLOTS, ClaimBatches, Handed
from taskfarm.domain import RunNotFound, Task, TaskState, Wanted

NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
#: Long enough for a thread that is not held back to get in, on a busy machine.
GET_IN_SECONDS = 5


class FakeDatabase:
    """Hands out tasks 0, 1, 2... in order of the slots of each statement, like the claim
    statement; the first statement waits until `release` is set, so that claims queue up."""

    def __init__(self, num_tasks: int = 10**6, skipped: frozenset[int] = frozenset()) -> None:
        self.num_tasks = num_tasks
        self.skipped = skipped
        self.frontier = 0
        self.batches: list[list[Wanted]] = []
        self.in_first = threading.Event()
        self.release = threading.Event()
        self.fail_with: Exception | None = None

    def execute(self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime) -> Handed:
        self.batches.append(list(wanted))
        if len(self.batches) == 1:
            self.in_first.set()
            assert self.release.wait(GET_IN_SECONDS * 4)
        if self.fail_with is not None:
            raise self.fail_with
        handed = []
        for claim in wanted:
            tasks = []
            for _ in range(claim.count):
                if self.frontier >= self.num_tasks:
                    break
                index, self.frontier = self.frontier, self.frontier + 1
                if index not in self.skipped:
                    tasks.append(Task(index, TaskState.COMPUTING, 0, claim.worker_uuid, 1))
            handed.append(tasks)
        return Handed(handed, untouched_left=self.frontier < self.num_tasks)


def _claim_in_thread(
    batches: ClaimBatches, worker: str, count: int, results: dict[str, object]
) -> threading.Thread:
    def claim() -> None:
        try:
            results[worker] = batches.claim("run", Wanted(worker, count), NOW)
        except Exception as error:
            results[worker] = error

    thread = threading.Thread(target=claim)
    thread.start()
    return thread


def _wait_for_waiting(batches: ClaimBatches, claims: int) -> None:
    """Until `claims` claims wait behind the one being sent."""
    while len(batches._waiting.get("run", ())) < claims:
        threading.Event().wait(0.01)


def _indices(result: object) -> list[int]:
    assert isinstance(result, list), result
    return [task.index for task in result]


def test_claims_that_come_while_one_is_sent_go_together_in_the_next() -> None:
    database = FakeDatabase()
    batches = ClaimBatches(database.execute)
    results: dict[str, object] = {}
    first = _claim_in_thread(batches, "first", 1, results)
    assert database.in_first.wait(GET_IN_SECONDS)
    others = [_claim_in_thread(batches, f"w{n}", 2, results) for n in range(3)]
    _wait_for_waiting(batches, 3)

    database.release.set()
    for thread in [first, *others]:
        thread.join(GET_IN_SECONDS)

    assert [len(batch) for batch in database.batches] == [1, 3]
    assert _indices(results["first"]) == [0]
    handed = sorted(_indices(results[f"w{n}"]) for n in range(3))
    assert handed == [[1, 2], [3, 4], [5, 6]]
    for n in range(3):
        result = results[f"w{n}"]
        assert isinstance(result, list)
        assert {task.worker for task in result} == {f"w{n}"}


def test_a_failed_statement_fails_every_claim_in_it_and_the_next_claims_go_on() -> None:
    database = FakeDatabase()
    database.fail_with = RunNotFound("run")
    batches = ClaimBatches(database.execute)
    results: dict[str, object] = {}
    first = _claim_in_thread(batches, "first", 1, results)
    assert database.in_first.wait(GET_IN_SECONDS)
    second = _claim_in_thread(batches, "second", 1, results)
    _wait_for_waiting(batches, 1)

    database.release.set()
    first.join(GET_IN_SECONDS)
    second.join(GET_IN_SECONDS)
    assert isinstance(results["first"], RunNotFound)
    assert isinstance(results["second"], RunNotFound)

    database.fail_with = None
    assert _indices(batches.claim("run", Wanted("later", 2), NOW)) == [0, 1]
    assert batches._led == set()


def test_a_claim_short_of_tasks_skipped_out_of_order_looks_further() -> None:
    database = FakeDatabase(skipped=frozenset({1, 2}))
    database.release.set()
    batches = ClaimBatches(database.execute)

    assert _indices(batches.claim("run", Wanted("w", 3), NOW)) == [0, 3, 4]
    assert [batch[0].count for batch in database.batches] == [3, 2]


def test_a_claim_gets_fewer_when_the_run_has_no_more() -> None:
    database = FakeDatabase(num_tasks=2)
    database.release.set()
    batches = ClaimBatches(database.execute)

    assert _indices(batches.claim("run", Wanted("w", 5), NOW)) == [0, 1]
    assert batches.claim("run", Wanted("w", 5), NOW) == []


def test_a_batch_hands_out_at_most_as_many_tasks_as_one_claim_may_ask_for() -> None:
    database = FakeDatabase()
    batches = ClaimBatches(database.execute)
    results: dict[str, object] = {}
    first = _claim_in_thread(batches, "first", 1, results)
    assert database.in_first.wait(GET_IN_SECONDS)
    big = [_claim_in_thread(batches, f"big{n}", MAX_SLOTS // 2 + 1, results) for n in range(2)]
    _wait_for_waiting(batches, 2)

    database.release.set()
    for thread in [first, *big]:
        thread.join(GET_IN_SECONDS)

    assert [len(batch) for batch in database.batches] == [1, 1, 1]
    assert all(len(_indices(results[f"big{n}"])) == MAX_SLOTS // 2 + 1 for n in range(2))


@pytest.mark.parametrize("claims", [1, 8])
def test_every_claim_gets_its_tasks_exactly_once_under_concurrency(claims: int) -> None:
    database = FakeDatabase()
    database.release.set()
    batches = ClaimBatches(database.execute)
    results: dict[str, object] = {}
    threads = [_claim_in_thread(batches, f"w{n}", 3, results) for n in range(claims * 4)]
    for thread in threads:
        thread.join(GET_IN_SECONDS * 4)

    handed = [index for result in results.values() for index in _indices(result)]
    assert sorted(handed) == list(range(len(threads) * 3))
    assert batches._led == set()


def test_claims_sent_together_by_one_caller_wait_in_line_and_get_their_tasks_in_order() -> None:
    database = FakeDatabase(skipped=frozenset({4}))
    batches = ClaimBatches(database.execute)
    results: dict[str, object] = {}
    first = _claim_in_thread(batches, "first", 1, results)
    assert database.in_first.wait(GET_IN_SECONDS)
    wanted = [Wanted("a", 2), Wanted("b", MAX_SLOTS - 1), Wanted("c", 1)]

    def claim_each() -> None:
        results["each"] = batches.claim_each("run", wanted, NOW)

    caller = threading.Thread(target=claim_each)
    caller.start()
    _wait_for_waiting(batches, 3)
    database.release.set()
    for thread in (first, caller):
        thread.join(GET_IN_SECONDS)

    each = results["each"]
    assert isinstance(each, list)
    # Claims of one caller are sent as any others: in order, split where a batch is full,
    # and one short of a task skipped out of order looks further in the next.
    assert [[w.worker_uuid for w in batch] for batch in database.batches] == [
        ["first"],
        ["a"],
        ["b", "c"],
        ["b"],
    ]
    assert [_indices(tasks) for tasks in each] == [
        [1, 2],
        [3, *range(5, MAX_SLOTS + 2), MAX_SLOTS + 3],
        [MAX_SLOTS + 2],
    ]
    assert batches._led == set()
