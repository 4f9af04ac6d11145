"""A database that goes away: a prompt 503 with a detail a person can act on, never a hang."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from sqlalchemy.engine import make_url
from starlette.testclient import TestClient

from taskfarm.adapters.redis import RedisStorage
from taskfarm.adapters.sqlalchemy import SqlStorage, pg_loop_claims
from taskfarm.adapters.sqlalchemy.engine import DEAD_PEER_SETTINGS, create_engine
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import RunPolicy, StorageError, Task, Wanted, WorkerRegistration
from taskfarm.entrypoints.http import create_app
from tests.conftest import POSTGRES_URL
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


def _kill(process: subprocess.Popen[bytes]) -> None:
    process.kill()
    process.wait()


def _freeze(process: subprocess.Popen[bytes]) -> None:
    # Connections stay open and nothing answers: only timeouts end the wait.
    process.send_signal(signal.SIGSTOP)


@pytest.mark.parametrize("lose", [_kill, _freeze], ids=["killed", "frozen"])
def test_losing_redis_gives_503_not_a_hang(
    private_redis: tuple[str, subprocess.Popen[bytes]],
    lose: Callable[[subprocess.Popen[bytes]], None],
) -> None:
    url, process = private_redis
    services = bootstrap(
        Settings(database_url=url), storage=RedisStorage.from_url(url), hasher=FakeHasher()
    )
    services.accounts.add_user("ada", "engine")
    with TestClient(create_app(services)) as client:
        client.auth = ("ada", "engine")
        run = client.post("/api/run", json={"numTasks": 5}).json()
        worker = {"uuid": "w", "hostname": "h", "pid": 1}
        assert client.post("/api/worker", json=worker).status_code == 201
        # Claims go through the asyncio client, which has a connection of its own by now.
        claim = f"/api/runs/{run['uuid']}/task"
        assert client.post(claim, json={"worker_uuid": "w"}).status_code == 201

        lose(process)
        answers = []
        # The claim first, while its worker counts as heard from lately: it goes to the
        # asyncio client alone.
        for method, path, body in [
            ("POST", claim, {"worker_uuid": "w"}),
            ("GET", f"/api/runs/{run['uuid']}", None),
        ]:
            started = time.monotonic()
            answers.append(client.request(method, path, json=body))
            assert time.monotonic() - started < PROMPT_SECONDS

    for response in answers:
        assert response.status_code == 503
        assert "database is unavailable" in response.json()["detail"]


@pytest.mark.parametrize(
    "open_store",
    [
        lambda port: SqlStorage.from_url(f"postgresql://postgres@127.0.0.1:{port}/test"),
        lambda port: RedisStorage.from_url(f"redis://127.0.0.1:{port}/0"),
    ],
    ids=["postgres", "redis"],
)
def test_an_unreachable_database_is_a_storage_error(open_store: object) -> None:
    assert callable(open_store)
    storage = open_store(free_port())
    with pytest.raises(StorageError):
        storage.runs.get_run("0" * 32)


def test_claims_awaited_on_a_loop_fail_promptly_when_postgresql_is_unreachable() -> None:
    storage = SqlStorage.from_url(f"postgresql://postgres@127.0.0.1:{free_port()}/test")

    async def claim() -> None:
        try:
            await storage.runs.claim_batch("0" * 32, [Wanted("w", 1)], dt.datetime.now(dt.UTC))
        finally:
            await storage.leave_loop()

    started = time.monotonic()
    with pytest.raises(StorageError):
        asyncio.run(claim())
    assert time.monotonic() - started < PROMPT_SECONDS
    storage.close()


def _named_storage(postgres_url: str) -> tuple[SqlStorage, str]:
    """A store whose connections carry an application name of their own, and that name."""
    name = f"taskfarm-test-{uuid.uuid4().hex[:12]}"
    url = make_url(postgres_url).update_query_dict({"application_name": name})
    return SqlStorage.from_url(url.render_as_string(hide_password=False)), name


def _drop_connections(name: str) -> int:
    """What a server restart or a proxy's idle timeout does to the connections of `name`."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        dropped = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s",
            [name],
        ).fetchone()
    assert dropped is not None
    return int(dropped[0])


def _run_to_claim(storage: SqlStorage, now: dt.datetime) -> str:
    """A run of 10 tasks in the store's fresh schema, for worker "w", registered too."""
    storage.create_schema()
    storage.workers.register(WorkerRegistration("w", "node", 1), now)
    return storage.runs.create_run(uuid.uuid4().hex, 10, RunPolicy()).uuid


@pytest.mark.postgres
def test_a_postgresql_connection_dropped_between_requests_is_replaced(postgres_url: str) -> None:
    storage, name = _named_storage(postgres_url)
    try:
        storage.create_schema()
        run = storage.runs.create_run(uuid.uuid4().hex, 10, RunPolicy())
        assert _drop_connections(name) == 1

        assert storage.runs.get_run(run.uuid) == run
    finally:
        storage.close()


@pytest.mark.postgres
def test_a_postgresql_connection_dropped_while_claims_wait_on_the_loop_is_replaced(
    postgres_url: str,
) -> None:
    storage, name = _named_storage(postgres_url)
    now = dt.datetime.now(dt.UTC)

    async def claim_drop_claim(run: str) -> list[list[list[Task]]]:
        try:
            first = await storage.runs.claim_batch(run, [Wanted("w", 1)], now)
            assert _drop_connections(name) >= 1
            return [first, await storage.runs.claim_batch(run, [Wanted("w", 1)], now)]
        finally:
            await storage.leave_loop()

    try:
        claimed = asyncio.run(claim_drop_claim(_run_to_claim(storage, now)))
        assert [[task.index for task in tasks] for [tasks] in claimed] == [[0], [1]]
    finally:
        storage.close()


@contextmanager
def _frozen_connections(name: str) -> Iterator[None]:
    """The server processes of the connections of `name` stopped: the connections stay open
    and nothing answers, as when PostgreSQL hangs or its host dies."""
    with psycopg.connect(POSTGRES_URL, autocommit=True) as admin:
        pids = [
            pid
            for (pid,) in admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = %s", [name]
            )
        ]
    assert pids
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
        _drop_connections(name)


@pytest.mark.postgres
def test_claims_awaited_on_the_loop_fail_in_time_when_postgresql_stops_answering(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pg_loop_claims, "STATEMENT_TIMEOUT_SECONDS", 1.0)
    storage, name = _named_storage(postgres_url)
    now = dt.datetime.now(dt.UTC)

    async def claim_freeze_claim(run: str) -> float:
        try:
            await storage.runs.claim_batch(run, [Wanted("w", 1)], now)
            with _frozen_connections(name):
                started = time.monotonic()
                with pytest.raises(StorageError, match="did not answer within 1 s"):
                    await storage.runs.claim_batch(run, [Wanted("w", 1)], now)
                return time.monotonic() - started
        finally:
            await storage.leave_loop()

    try:
        # The deadline, then psycopg's five seconds for the server to cancel the statement.
        assert asyncio.run(claim_freeze_claim(_run_to_claim(storage, now))) < PROMPT_SECONDS
    finally:
        storage.close()


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("query", "expected"),
    [({}, "30000"), ({"tcp_user_timeout": "5000"}, "5000")],
    ids=["default", "from the URL"],
)
def test_postgresql_connections_leave_a_silent_peer_to_the_kernel(
    postgres_url: str, query: dict[str, str], expected: str
) -> None:
    """A dead host cannot be made here: what is checked is that libpq was told to give up on
    one, unless the URL says otherwise."""
    url = make_url(postgres_url).update_query_dict(query)
    engine = create_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as connection:
            driver_connection = connection.connection.driver_connection
            assert isinstance(driver_connection, psycopg.Connection)
            parameters = driver_connection.info.get_parameters()
    finally:
        engine.dispose()
    assert parameters["tcp_user_timeout"] == expected
    assert parameters["keepalives_idle"] == DEAD_PEER_SETTINGS["keepalives_idle"]
