"""The memory store, the reference of every other, checked against an independent model."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.memory.run_store import MemoryRunStore
from taskfarm.domain import Task, TaskChange
from tests.stateful import store_machine


def test_memory_store_agrees_with_the_model_over_random_operations() -> None:
    run_state_machine_as_test(
        store_machine(MemoryStorage),
        settings=settings(
            max_examples=200,
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )


class _RestartsEverything(MemoryRunStore):
    """A faulty store: a partial restart throws finished work away too."""

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        super().restart(run_uuid, everything=True)


class _KeepsLeasesEndingNow(MemoryRunStore):
    """A faulty store: a lease ending at the very moment of the sweep is not expired yet."""

    def expire_leases(self, now: dt.datetime) -> int:
        return super().expire_leases(now - dt.timedelta(microseconds=1))


class _ListensToAnyWorker(MemoryRunStore):
    """A faulty store: a worker whose task was handed to another may still change it."""

    def update_task(
        self,
        run_uuid: str,
        index: int,
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> Task:
        return super().update_task(run_uuid, index, change, now)


class _BatchListensToAnyWorker(MemoryRunStore):
    """A faulty store: a batch of changes from a worker ignores who holds each task."""

    def change_tasks(
        self,
        run_uuid: str,
        indices: Sequence[int],
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> list[int]:
        return super().change_tasks(run_uuid, indices, change, now)


def _faulty(store: type[MemoryRunStore]) -> MemoryStorage:
    storage = MemoryStorage()
    storage.runs = store(threading.Lock())
    return storage


@pytest.mark.parametrize(
    "store",
    [_RestartsEverything, _KeepsLeasesEndingNow, _ListensToAnyWorker, _BatchListensToAnyWorker],
)
def test_model_catches_a_store_that_breaks_a_rule(store: type[MemoryRunStore]) -> None:
    # A failed `pytest.raises` inside the machine is pytest's Failed, not an AssertionError.
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        run_state_machine_as_test(
            store_machine(lambda: _faulty(store)),
            settings=settings(
                max_examples=300,
                stateful_step_count=40,
                deadline=None,
                database=None,
                derandomize=True,
                phases=[Phase.generate],
                report_multiple_bugs=False,
            ),
        )
