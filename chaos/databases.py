"""The databases the harness runs its case over, each with its own faults: PostgreSQL, the
machine's own, in a database of the harness's (restarted, then hung); a Redis Cluster of three
masters that the harness starts itself, on the bridge's address so that every host reaches it
(the run's master restarted, then all hung); and SQLite on a small file system of its own,
which the harness fills for a while."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol

import attrs
import psutil
import psycopg
import redis

from chaos.hosts import GATEWAY

#: A fault of the database's own: what the report calls it, and what does it.
Fault = tuple[str, Callable[[], None]]
#: A database that stops answering for this long (SIGSTOP, SIGCONT).
HANG_SECONDS = 20


class Database(Protocol):
    key: str
    title: str
    url: str

    def faults(self, run_uuid: str) -> list[Fault]:
        """The database's own faults, in the order they come, for a run on it."""

    def resume(self) -> None:
        """Whatever a fault stopped goes on: the harness calls it on its way out."""

    def checks(self) -> list[list[str]]:
        """Rows for the report: what the database says of itself once the run is over."""


def _stop_for(processes: list[psutil.Process], seconds: float) -> None:
    stopped: list[psutil.Process] = []
    try:
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGSTOP)
                stopped.append(process)
        time.sleep(seconds)
    finally:
        _resume(stopped)


def _resume(processes: list[psutil.Process]) -> None:
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signal.SIGCONT)


class _ServerProcesses:
    """A database that is server processes: it hangs when they are stopped, goes on when they
    are continued, and has nothing to add to the report."""

    def _processes(self) -> list[psutil.Process]:
        raise NotImplementedError

    def hang(self) -> None:
        _stop_for(self._processes(), HANG_SECONDS)

    def resume(self) -> None:
        _resume(self._processes())

    def checks(self) -> list[list[str]]:
        return []


POSTGRES_DATABASE = "tfchaos"


@attrs.define
class Postgres(_ServerProcesses):
    """The machine's PostgreSQL, reached through its Unix socket (every namespace shares the
    file system), in a database the harness makes and drops."""

    key: str = "postgres"
    title: str = "PostgreSQL"
    url: str = f"postgresql://postgres@/{POSTGRES_DATABASE}?host=/var/run/postgresql"

    def faults(self, run_uuid: str) -> list[Fault]:
        return [
            ("PostgreSQL restarted", self.restart),
            (f"PostgreSQL hangs {HANG_SECONDS} s (SIGSTOP, SIGCONT)", self.hang),
        ]

    def restart(self) -> None:
        cluster = next(Path("/etc/postgresql").iterdir()).name
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"], check=True
        )

    def _processes(self) -> list[psutil.Process]:
        pid = int(next(Path("/var/run/postgresql").glob("*.pid")).read_text().split()[0])
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    @classmethod
    @contextlib.contextmanager
    def opened(cls, work: Path) -> Iterator[Postgres]:
        _drop_postgres_database()
        with _postgres_admin() as admin:
            admin.execute(f"CREATE DATABASE {POSTGRES_DATABASE}")
        try:
            yield cls()
        finally:
            _drop_postgres_database()


def _postgres_admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect("host=127.0.0.1 user=postgres dbname=postgres", autocommit=True)


def _drop_postgres_database() -> None:
    with _postgres_admin() as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {POSTGRES_DATABASE} WITH (FORCE)")


REDIS_PORTS = (7101, 7102, 7103)
STARTUP_SECONDS = 30


@attrs.define
class RedisCluster(_ServerProcesses):
    """Three masters on the bridge's address, no replicas, each with the append-only file
    fsynced every second, as docs/deployment.md asks: a master restarted keeps its data, and
    the run's slots are away while it is."""

    work: Path
    nodes: dict[int, subprocess.Popen[bytes]] = attrs.Factory(dict)
    key: str = "redis-cluster"
    title: str = "a Redis Cluster of three masters"
    url: str = f"redis+cluster://{GATEWAY}:{REDIS_PORTS[0]}"

    def faults(self, run_uuid: str) -> list[Fault]:
        return [
            ("the run's Redis Cluster master restarted", lambda: self.restart(run_uuid)),
            (f"the Redis Cluster hangs {HANG_SECONDS} s (SIGSTOP, SIGCONT)", self.hang),
        ]

    def start(self, port: int) -> None:
        folder = self.work / f"redis-{port}"
        folder.mkdir(exist_ok=True)
        command = [str(shutil.which("redis-server")), "--port", str(port), "--bind", GATEWAY]
        command += ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        command += ["--cluster-announce-ip", GATEWAY, "--dir", str(folder), "--save", ""]
        command += ["--appendonly", "yes", "--appendfsync", "everysec"]
        # Reached from the hosts' namespaces, which protected mode refuses; the bridge is this
        # machine's own, private to the harness.
        command += ["--protected-mode", "no"]
        with (folder / "redis.log").open("ab") as log:
            self.nodes[port] = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        _wait(lambda: _answers(port), f"Redis on port {port} did not start")

    def restart(self, run_uuid: str) -> None:
        cluster = redis.RedisCluster(host=GATEWAY, port=REDIS_PORTS[0])
        try:
            port = int(cluster.get_node_from_key(f"{{{run_uuid}}}").port)
        finally:
            cluster.close()
        node = self.nodes.pop(port)
        node.terminate()  # a clean shutdown: its append-only file is flushed
        node.wait(timeout=30)
        self.start(port)
        _wait(self._cluster_ok, "the Redis Cluster did not come back")

    def _processes(self) -> list[psutil.Process]:
        found = []
        for node in self.nodes.values():
            with contextlib.suppress(psutil.NoSuchProcess):
                found.append(psutil.Process(node.pid))
        return found

    def _cluster_ok(self) -> bool:
        with contextlib.suppress(redis.RedisError):
            info = redis.Redis(host=GATEWAY, port=REDIS_PORTS[0]).cluster("info")
            return bool(info.get("cluster_state") == "ok")
        return False

    @classmethod
    @contextlib.contextmanager
    def opened(cls, work: Path) -> Iterator[RedisCluster]:
        cluster = cls(work)
        try:
            for port in REDIS_PORTS:
                cluster.start(port)
            addresses = [f"{GATEWAY}:{port}" for port in REDIS_PORTS]
            create = ["redis-cli", "--cluster", "create", *addresses]
            subprocess.run(
                [*create, "--cluster-replicas", "0", "--cluster-yes"],
                check=True,
                capture_output=True,
            )
            _wait(cluster._cluster_ok, "the Redis Cluster did not form")
            yield cluster
        finally:
            cluster.resume()
            for node in cluster.nodes.values():
                node.kill()
                node.wait()


def _answers(port: int) -> bool:
    with contextlib.suppress(redis.RedisError):
        return bool(redis.Redis(host=GATEWAY, port=port, socket_timeout=1).ping())
    return False


def _wait(ready: object, failure: str) -> None:
    assert callable(ready)
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        if time.monotonic() > deadline:
            raise RuntimeError(failure)
        time.sleep(0.2)


#: The file system SQLite's database lives on, small enough to fill in a moment.
DISK_MB = 64
#: How long the disk stays full.
FULL_SECONDS = 15


@attrs.define
class SqliteOnSmallDisk:
    """SQLite on a tmpfs of its own, shared by the hosts' servers as processes of one machine
    share it; its fault is a full disk, for `FULL_SECONDS`, then room again."""

    disk: Path
    key: str = "sqlite-disk-full"
    title: str = f"SQLite on a {DISK_MB} MB file system"

    @property
    def url(self) -> str:
        return f"sqlite:///{self.disk / 'taskfarm.db'}"

    @property
    def filler(self) -> Path:
        return self.disk / "filler"

    def faults(self, run_uuid: str) -> list[Fault]:
        return [(f"the database's disk full for {FULL_SECONDS} s", self.fill_for_a_while)]

    def fill_for_a_while(self) -> None:
        try:
            with self.filler.open("wb") as filler, contextlib.suppress(OSError):
                while True:
                    filler.write(b"\0" * (1 << 16))
                    filler.flush()
            time.sleep(FULL_SECONDS)
        finally:
            self.resume()

    def resume(self) -> None:
        self.filler.unlink(missing_ok=True)

    def checks(self) -> list[list[str]]:
        with sqlite3.connect(self.disk / "taskfarm.db") as connection:
            [verdict] = connection.execute("PRAGMA integrity_check").fetchone()
        return [["SQLite's integrity_check at the end", str(verdict)]]

    @classmethod
    @contextlib.contextmanager
    def opened(cls, work: Path) -> Iterator[SqliteOnSmallDisk]:
        disk = work / "disk"
        disk.mkdir()
        size = f"size={DISK_MB}m"
        subprocess.run(["mount", "-t", "tmpfs", "-o", size, "tmpfs", str(disk)], check=True)
        try:
            yield cls(disk)
        finally:
            subprocess.run(["umount", "--lazy", str(disk)], check=True)
