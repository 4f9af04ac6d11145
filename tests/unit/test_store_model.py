"""The memory store, the reference of every other, checked against an independent model."""

from __future__ import annotations

import threading

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis.stateful import run_state_machine_as_test

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.memory.runs import MemoryRunStore
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


def _faulty_storage() -> MemoryStorage:
    storage = MemoryStorage()
    storage.runs = _RestartsEverything(threading.Lock())
    return storage


def test_model_catches_a_store_that_breaks_a_rule() -> None:
    with pytest.raises(AssertionError):
        run_state_machine_as_test(
            store_machine(_faulty_storage),
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
