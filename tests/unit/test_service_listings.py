"""What the use cases show of one run: its busiest workers, its requeued and failed tasks."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.domain import (
    RunNotFound,
    TaskChange,
    TaskHolder,
    TaskState,
)
from taskfarm.service import FarmService, Listing
from tests.claiming import claim_tasks
from tests.fakes import FakeClock

# A look at one run


def test_holders_of_a_run_are_its_busiest_workers_first_as_they_registered(
    taskfarm: FarmService, two_workers: tuple[str, str]
) -> None:
    first, second = two_workers
    run, other = taskfarm.create_run(10), taskfarm.create_run(10)
    taskfarm.claim_task(run.uuid, first)
    taskfarm.claim_tasks(run.uuid, second, count=3)
    taskfarm.claim_tasks(other.uuid, first, count=5)

    holders = taskfarm.holders(run.uuid, limit=10)

    registered = [taskfarm.workers.get_worker(uuid) for uuid in (second, first)]
    assert holders == Listing(
        [TaskHolder(second, 3, registered[0]), TaskHolder(first, 1, registered[1])], more=False
    )


def test_holders_beyond_the_limit_are_left_out_and_said_to_be_there(
    taskfarm: FarmService, two_workers: tuple[str, str]
) -> None:
    first, second = two_workers
    run = taskfarm.create_run(10)
    taskfarm.claim_tasks(run.uuid, first, count=2)
    taskfarm.claim_tasks(run.uuid, second, count=2)

    holders = taskfarm.holders(run.uuid, limit=1)

    # equally busy: by uuid
    assert [(holder.uuid, holder.tasks_held) for holder in holders.items] == [(first, 2)]
    assert holders.more


def test_a_holder_the_worker_store_does_not_know_is_listed_without_registration(
    storage: MemoryStorage, taskfarm: FarmService, clock: FakeClock
) -> None:
    run = taskfarm.create_run(3)
    claim_tasks(storage, run.uuid, "never-registered", clock.now())
    assert taskfarm.holders(run.uuid, limit=5) == Listing(
        [TaskHolder("never-registered", 1, None)], more=False
    )


def test_failed_and_requeued_tasks_are_listed_up_to_the_limit_saying_whether_there_are_more(
    taskfarm: FarmService, worker: str
) -> None:
    run = taskfarm.create_run(10)
    taskfarm.claim_tasks(run.uuid, worker, count=6)
    for index in (5, 1, 3):
        taskfarm.update_task(run.uuid, index, TaskChange(state=TaskState.FAILED))
    for index in (0, 2):
        taskfarm.update_task(run.uuid, index, TaskChange(state=TaskState.WAITING))

    failed = taskfarm.list_tasks(run.uuid, "failed", -1, 2).page
    requeued = taskfarm.requeued_tasks(run.uuid, 2)

    assert [task.index for task in failed.tasks] == [1, 3]
    assert (len(failed.reports), failed.next_after) == (2, 3)
    assert [task.index for task in requeued.items] == [0, 2]
    assert not requeued.more
    every_failed = [taskfarm.get_task(run.uuid, index) for index in (1, 3, 5)]
    assert taskfarm.list_tasks(run.uuid, "failed", -1, 3).page.tasks == every_failed
    rest = taskfarm.list_tasks(run.uuid, "failed", failed.next_after, 2).page
    assert (rest.tasks, rest.next_after) == (every_failed[2:], None)


@pytest.mark.parametrize(
    "look",
    [
        lambda taskfarm, uuid: taskfarm.holders(uuid, 10),
        lambda taskfarm, uuid: taskfarm.list_tasks(uuid, "failed", -1, 10),
        lambda taskfarm, uuid: taskfarm.requeued_tasks(uuid, 10),
    ],
    ids=["holders", "list_failed_tasks", "requeued_tasks"],
)
@pytest.mark.parametrize("uuid", ["nope", "", "x" * 65, "a\x00b"])
def test_a_look_at_an_unknown_run_is_not_found(
    taskfarm: FarmService, look: Callable[[FarmService, str], object], uuid: str
) -> None:
    with pytest.raises(RunNotFound):
        look(taskfarm, uuid)
