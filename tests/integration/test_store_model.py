"""Every store against the model of the rules (`tests.stateful`), over random operations."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test

from tests.integration.conftest import StorageFactory
from tests.stateful import store_machine

# Against the model


def test_the_store_agrees_with_the_model_over_random_operations(
    storage_factory: StorageFactory,
) -> None:
    run_state_machine_as_test(
        store_machine(storage_factory.empty),
        settings=settings(
            max_examples=25,
            stateful_step_count=20,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
