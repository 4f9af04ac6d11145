"""A database that goes away: a prompt 503 with a detail a person can act on, never a hang."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from taskfarm.adapters.redis import RedisStorage
from taskfarm.adapters.sqlalchemy import SqlStorage
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import StorageError
from taskfarm.entrypoints.http import create_app
from tests.fakes import FakeHasher
from tests.integration.live_server import free_port

pytestmark = pytest.mark.redis

#: The Redis adapter's timeouts are five seconds; a request must not take much longer.
PROMPT_SECONDS = 15


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, which the test may stop."""
    server = shutil.which("redis-server")
    if server is None:
        pytest.fail("redis-server is needed for this test")
    port = free_port()
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 20
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
    try:
        yield url, process
    finally:
        process.kill()
        process.wait()


def test_losing_redis_gives_503_not_a_hang(
    private_redis: tuple[str, subprocess.Popen[bytes]],
) -> None:
    url, process = private_redis
    services = bootstrap(
        Settings(database_url=url), storage=RedisStorage.from_url(url), hasher=FakeHasher()
    )
    services.accounts.add_user("ada", "engine")
    with TestClient(create_app(services)) as client:
        client.auth = ("ada", "engine")
        run = client.post("/api/run", json={"numTasks": 5}).json()

        process.kill()
        process.wait()
        started = time.monotonic()
        response = client.get(f"/api/runs/{run['uuid']}")

    assert time.monotonic() - started < PROMPT_SECONDS
    assert response.status_code == 503
    assert "database is unavailable" in response.json()["detail"]


@pytest.mark.parametrize(
    "open_store",
    [
        lambda port: SqlStorage.from_url(f"postgresql://postgres@127.0.0.1:{port}/test"),
        lambda port: RedisStorage(redis.Redis(port=port, socket_connect_timeout=1)),
    ],
    ids=["postgres", "redis"],
)
def test_an_unreachable_database_is_a_storage_error(open_store: object) -> None:
    assert callable(open_store)
    storage = open_store(free_port())
    with pytest.raises(StorageError):
        storage.runs.get_run("0" * 32)
