"""What a crash keeps. A server killed mid-run, on SQLite or PostgreSQL, and PostgreSQL killed
itself, lose no write they acknowledged. Redis with the append-only file fsynced every second
(the compose file's setting) may lose up to a second of them: a task whose acknowledged
report is lost so is handed out again once its lease ends, never lost."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from taskfarm.adapters.redis import RedisStorage
from taskfarm.adapters.sqlalchemy import SqlStorage
from taskfarm.domain import RunPolicy, TaskChange, TaskState, Wanted, WorkerRegistration
from taskfarm.ports import Storage
from tests.claiming import claim_batch, leave_loops
from tests.conftest import AS_POSTGRES, unavailable
from tests.integration.live_server import LiveServer, free_port, running_server
from tests.integration.processes import serving

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
LEASE = dt.timedelta(seconds=60)
DONE = TaskChange.from_fields(100, TaskState.DONE.value)


def _session(server: LiveServer) -> requests.Session:
    session = requests.Session()
    session.auth = (server.user, server.password)
    return session


def _run_info(server: LiveServer, run: str) -> Any:
    return _session(server).get(f"{server.api}runs/{run}").json()


@pytest.mark.parametrize("backend", ["sqlite", "postgres_url"], ids=["sqlite", "postgresql"])
def test_a_server_killed_mid_run_keeps_every_write_it_acknowledged(
    request: pytest.FixtureRequest, tmp_path: Path, backend: str
) -> None:
    url = (
        f"sqlite:///{tmp_path / 'taskfarm.db'}"
        if backend == "sqlite"
        else str(request.getfixturevalue(backend))
    )
    with running_server(url, tmp_path / "first.log") as server:
        api, session = server.api, _session(server)
        run = session.post(api + "run", json={"numTasks": 50}).json()["uuid"]
        session.post(api + "worker", json={"uuid": "w", "hostname": "node", "pid": 1})
        claims = f"{api}runs/{run}/tasks/claim"
        claimed = session.post(claims, json={"worker_uuid": "w", "count": 20})
        held = [task["id"] for task in claimed.json()["tasks"]]
        exchange = session.post(claims, json={"worker_uuid": "w", "done": held[:10], "count": 0})
        assert exchange.status_code == 200, exchange.text
        assert exchange.json()["lost"] == []
        server.crash()

    with running_server(url, tmp_path / "again.log") as again:
        info = _run_info(again, run)
        assert (info["numDone"], info["numComputing"]) == (10, 10)
        tasks = _session(again).get(f"{again.api}runs/{run}/tasks", params={"status": "done"})
        assert sorted(task["task"] for task in tasks.json()["tasks"]) == sorted(held[:10])


def _postgres_binaries() -> Path:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if not found:
        unavailable("a PostgreSQL installation (initdb)", FileNotFoundError("/usr/lib/postgresql"))
    return found[-1]


@contextmanager
def _own_postgres() -> Iterator[tuple[str, Path]]:
    """A PostgreSQL server of the test's own, on a Unix socket in a folder of its own: one the
    test may kill. Yields its URL and its data directory."""
    initdb = _postgres_binaries() / "initdb"
    folder = Path(tempfile.mkdtemp(prefix="taskfarm-pg-"))
    try:
        if AS_POSTGRES:
            shutil.chown(folder, "postgres", "postgres")
        data = folder / "data"
        subprocess.run(
            [str(initdb), "-D", str(data), "-A", "trust", "-U", "postgres"],
            check=True,
            capture_output=True,
            **AS_POSTGRES,
        )
        yield f"postgresql://postgres@/postgres?host={folder}", data
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def _postgres_running(data: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The server on `data`, in a process group of its own, killed at the end. A child of
    this process, which reaps it: a zombie postmaster would keep a new one from starting."""
    command = [str(_postgres_binaries() / "postgres"), "-D", str(data), "-k", str(data.parent)]
    command += ["-c", "listen_addresses=", "-p", str(port)]
    with serving(
        command,
        lambda: _accepts(data, port),
        "PostgreSQL",
        start_new_session=True,
        **AS_POSTGRES,
    ) as process:
        yield process


def _accepts(data: Path, port: int) -> bool:
    try:
        psycopg.connect(host=str(data.parent), port=port, user="postgres").close()
    except psycopg.OperationalError:
        return False
    return True


def test_postgresql_killed_keeps_every_write_it_acknowledged() -> None:
    port = free_port()
    with _own_postgres() as (url, data):
        url += f"&port={port}"
        with _postgres_running(data, port) as postgres:
            storage = SqlStorage.from_url(url)
            storage.create_schema()
            run = _claimed_and_reported(storage)
            storage.close()
            # Every process of the server at once, as a power cut would: no checkpoint, no
            # shutdown; what it acknowledged is in its write-ahead log.
            os.killpg(postgres.pid, signal.SIGKILL)
            postgres.wait()
        with _postgres_running(data, port):
            storage = SqlStorage.from_url(url)
            try:
                _assert_reported(storage, run)
            finally:
                storage.close()


def _claimed_and_reported(storage: Storage) -> str:
    """A run of 10 with tasks 0 to 3 claimed by one worker, 0 and 1 reported done."""
    storage.workers.register(WorkerRegistration("w", "node", 1), NOW)
    storage.runs.create_run("r" * 32, 10, RunPolicy(lease_seconds=int(LEASE.total_seconds())))
    [claimed] = claim_batch(storage, "r" * 32, [Wanted("w", 4)], NOW)
    assert [task.index for task in claimed] == [0, 1, 2, 3]
    for index in (0, 1):
        storage.runs.update_task("r" * 32, index, DONE, NOW, "w")
    return "r" * 32


def _assert_reported(storage: Storage, run: str) -> None:
    counters = storage.runs.get_run(run).counters
    assert (counters.done, counters.computing) == (2, 2)
    states = [storage.runs.get_task(run, index).state for index in range(4)]
    assert states == [TaskState.DONE, TaskState.DONE, TaskState.COMPUTING, TaskState.COMPUTING]


@contextmanager
def _redis_with_append_only_file(folder: Path) -> Iterator[str]:
    """A Redis server of the test's own, persisting as the compose file's does."""
    server = shutil.which("redis-server")
    if server is None:
        unavailable("redis-server", FileNotFoundError("redis-server"))
    port = free_port()
    command = [server, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(folder)]
    command += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", ""]
    with serving(command, lambda: _pong(port), "Redis"):
        yield f"redis://127.0.0.1:{port}/0"


def _pong(port: int) -> bool:
    answer = subprocess.run(["redis-cli", "-p", str(port), "ping"], capture_output=True, text=True)
    return answer.stdout.strip() == "PONG"


def test_a_report_redis_acknowledged_and_lost_in_a_crash_leaves_its_task_to_be_handed_out_again(
    tmp_path: Path,
) -> None:
    before, after = tmp_path / "before", tmp_path / "after"
    before.mkdir()
    with _redis_with_append_only_file(before) as url:
        storage = RedisStorage.from_url(url)
        storage.create_schema()
        run = _claimed_and_reported(storage)
        # The append-only file as a crash within a second of the last report might leave it:
        # with the claims, without the reports.
        shutil.copytree(before, after)
        storage.runs.update_task(run, 2, DONE, NOW, "w")
        leave_loops(storage)
        storage.close()
    with _redis_with_append_only_file(after) as url:
        storage = RedisStorage.from_url(url)
        try:
            counters = storage.runs.get_run(run).counters
            assert (counters.done, counters.computing) == (2, 2)
            assert storage.runs.get_task(run, 2).state is TaskState.COMPUTING
            # Its worker's report is gone, not its task: the lease ends, and it goes out again,
            # as a lost attempt does, once no untouched task is left.
            later = NOW + LEASE + dt.timedelta(seconds=1)
            assert storage.runs.expire_leases(later) == 2
            [again] = claim_batch(storage, run, [Wanted("w", 8)], later)
            assert [task.index for task in again] == [4, 5, 6, 7, 8, 9, 2, 3]
        finally:
            leave_loops(storage)
            storage.close()
