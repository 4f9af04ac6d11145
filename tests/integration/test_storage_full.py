"""A database with no room left: SQLite on a full disk, Redis at its memory limit. Every write
that finds no room is refused with a 507 that says so and writes nothing, the database stays
whole, and the run goes on as soon as there is room again."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from taskfarm.adapters.sqlalchemy.errors import database_failed
from taskfarm.bootstrap import Services, bootstrap
from taskfarm.config import Settings
from taskfarm.domain import StorageFull
from taskfarm.entrypoints.http import create_app
from tests.conftest import unavailable
from tests.fakes import FakeHasher
from tests.integration.live_server import free_port
from tests.integration.processes import serving

USER, PASSWORD = "ada", "analytical engine"
#: Inputs of a new run, a few hundred kilobytes: more than a full disk has room for.
INPUTS = [f"sample-{i:06d} " + "x" * 100 for i in range(3000)]


@contextmanager
def _small_file_system(size: str) -> Iterator[Path]:
    """A tmpfs of `size`, mounted for the test: a disk it may fill (root only)."""
    mount = shutil.which("mount")
    if os.geteuid() != 0 or mount is None:
        unavailable("a file system to fill (mount, as root)", PermissionError("not root"))
    folder = Path(tempfile.mkdtemp(prefix="taskfarm-full-"))
    try:
        subprocess.run(
            [mount, "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], check=True
        )
        try:
            yield folder
        finally:
            subprocess.run(["umount", "--lazy", str(folder)], check=True)
    finally:
        folder.rmdir()


def _fill(folder: Path) -> Path:
    """A file that takes every byte left on the file system: delete it to make room."""
    filler = folder / "filler"
    descriptor = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for size in (1 << 16, 1 << 12, 1 << 9, 1):
            try:
                while True:
                    os.write(descriptor, b"\0" * size)
            except OSError:
                continue  # no room for one more of this size
    finally:
        os.close(descriptor)
    return filler


@contextmanager
def _client(database_url: str) -> Iterator[TestClient]:
    services: Services = bootstrap(Settings(database_url=database_url), hasher=FakeHasher())
    services.storage.create_schema()
    services.accounts.add_user(USER, PASSWORD)
    with TestClient(create_app(services)) as client:
        client.auth = (USER, PASSWORD)
        client.post("/api/worker", json={"uuid": "w", "hostname": "node", "pid": 1})
        yield client


def _new_run(client: TestClient) -> Any:
    return client.post("/api/run", json={"inputs": INPUTS})


def _claim(client: TestClient, run: str, count: int) -> Any:
    return client.post(f"/api/runs/{run}/tasks/claim", json={"worker_uuid": "w", "count": count})


def _exchange(client: TestClient, run: str, done: list[int]) -> Any:
    body = {"worker_uuid": "w", "done": done, "count": 0}
    return client.post(f"/api/runs/{run}/tasks/claim", json=body)


def _assert_full(response: Any) -> None:
    assert response.status_code == 507, response.text
    assert "nothing of this request was written" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0


def test_sqlite_on_a_full_disk_refuses_writes_with_507_and_resumes_once_there_is_room() -> None:
    with _small_file_system("4m") as disk:
        database = disk / "taskfarm.db"
        with _client(f"sqlite:///{database}") as client:
            first = _new_run(client).json()["uuid"]
            assert _claim(client, first, 5).status_code == 201
            filler = _fill(disk)

            _assert_full(_new_run(client))
            # Claims may still find room in pages the database holds already; never a 500.
            during = _claim(client, first, 20)
            assert during.status_code in (201, 507), during.text
            claimed = 5 + (len(during.json()["tasks"]) if during.status_code == 201 else 0)

            filler.unlink()
            second = _new_run(client)
            assert second.status_code == 201, second.text
            assert _claim(client, second.json()["uuid"], 3).status_code == 201
            assert client.get(f"/api/runs/{first}").json()["numComputing"] == claimed
            runs = client.get("/api/runs").json()["data"]
            assert len(runs) == 2, "the refused run left nothing behind"
        with sqlite3.connect(database) as connection:
            assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)


@contextmanager
def _redis_without_eviction() -> Iterator[str]:
    """A Redis server of the test's own that refuses writes past its memory limit, as a
    store must (`noeviction`: it never drops keys to make room)."""
    server = shutil.which("redis-server")
    if server is None:
        unavailable("redis-server", FileNotFoundError("redis-server"))
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--maxmemory-policy", "noeviction"]
    with serving(command, lambda: _answers(port), "Redis"):
        yield f"redis://127.0.0.1:{port}/0"


def _answers(port: int) -> bool:
    try:
        return bool(redis.Redis(port=port).ping())
    except redis.ConnectionError:
        return False


def test_redis_at_its_memory_limit_refuses_writes_with_507_and_resumes_once_there_is_room() -> None:
    with _redis_without_eviction() as url, _client(url) as client:
        run = client.post("/api/run", json={"numTasks": 100}).json()["uuid"]
        assert _claim(client, run, 5).status_code == 201
        filler = redis.Redis.from_url(url)
        used = int(filler.info("memory")["used_memory"])
        for key in range(16):
            filler.set(f"filler:{key}", b"\0" * (1 << 20))
        # Past its limit now, as the data of many runs would take it.
        filler.config_set("maxmemory", used + (8 << 20))

        _assert_full(_claim(client, run, 5))
        _assert_full(client.post("/api/run", json={"numTasks": 10}))
        done = {"worker_uuid": "w", "percentCompleted": 100, "status": "done"}
        _assert_full(client.put(f"/api/runs/{run}/tasks/0", json=done))
        _assert_full(_exchange(client, run, [1, 2]))

        filler.delete(*filler.keys("filler:*"))
        assert _claim(client, run, 5).status_code == 201
        assert _exchange(client, run, [1, 2]).json()["lost"] == []
        counts = client.get(f"/api/runs/{run}").json()
        assert (counts["numComputing"], counts["numDone"]) == (8, 2)
        assert len(client.get("/api/runs").json()["data"]) == 1


@pytest.mark.parametrize(
    ("reason", "full"),
    [
        (type("DiskFull", (Exception,), {"sqlstate": "53100"})(), True),
        (type("Deadlock", (Exception,), {"sqlstate": "40P01"})(), False),
        (OSError("disk I/O error"), False),
    ],
)
def test_a_driver_error_is_storage_full_only_when_the_database_says_so(
    reason: BaseException, full: bool
) -> None:
    assert isinstance(database_failed(reason), StorageFull) is full
