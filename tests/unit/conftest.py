from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Iterator

import pytest

from taskfarm.accounts import Accounts
from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.tokens import JwtSigner
from taskfarm.domain import RunPolicy
from taskfarm.service import FarmService
from tests.claiming import leave_loops
from tests.fakes import FakeClock, FakeHasher
from tests.unit.service_setup import OTHER, WORKER

TOKEN_LIFETIME = dt.timedelta(hours=1)


@pytest.fixture
def storage() -> Iterator[MemoryStorage]:
    storage = MemoryStorage()
    yield storage
    leave_loops(storage)


@pytest.fixture
def signing_key() -> bytes:
    return secrets.token_bytes(64)


@pytest.fixture
def taskfarm(storage: MemoryStorage, clock: FakeClock) -> Iterator[FarmService]:
    taskfarm = FarmService(runs=storage.runs, workers=storage.workers, clock=clock)
    yield taskfarm
    taskfarm.close()


@pytest.fixture
def accounts(storage: MemoryStorage, clock: FakeClock, signing_key: bytes) -> Accounts:
    return Accounts.of(storage, FakeHasher(), JwtSigner(signing_key), clock, TOKEN_LIFETIME)


@pytest.fixture
def worker(taskfarm: FarmService) -> str:
    return taskfarm.register_worker(WORKER).uuid


@pytest.fixture
def leasing(storage: MemoryStorage, clock: FakeClock) -> Iterator[FarmService]:
    """A task farm whose runs lease tasks for a minute and try each at most three times,
    unless they say otherwise."""
    leasing = FarmService(
        runs=storage.runs,
        workers=storage.workers,
        clock=clock,
        default_policy=RunPolicy(lease_seconds=60, max_attempts=3),
    )
    yield leasing
    leasing.close()


@pytest.fixture
def two_workers(leasing: FarmService) -> tuple[str, str]:
    return leasing.register_worker(WORKER).uuid, leasing.register_worker(OTHER).uuid
