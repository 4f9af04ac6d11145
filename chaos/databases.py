"""The databases the harness runs its case over, each with its own faults: PostgreSQL, the
machine's own, in a database of the harness's; and a Redis Cluster of three masters that the
harness starts itself, on the bridge's address so that every host reaches it."""

from __future__ import annotations

import contextlib
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Protocol

import attrs
import psutil
import psycopg
import redis

from chaos.hosts import GATEWAY


class Database(Protocol):
    key: str
    title: str
    url: str
    restart_name: str

    def restart(self, run_uuid: str) -> None:
        """The fault of a restart, of what holds the run."""

    def hang(self, seconds: float) -> None:
        """The fault of a database that stops answering, then goes on (SIGSTOP, SIGCONT)."""

    def resume(self) -> None:
        """Whatever a fault stopped goes on: the harness calls it on its way out."""


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


POSTGRES_DATABASE = "tfchaos"


@attrs.define
class Postgres:
    """The machine's PostgreSQL, reached through its Unix socket (every namespace shares the
    file system), in a database the harness makes and drops."""

    key: str = "postgres"
    title: str = "PostgreSQL"
    url: str = f"postgresql://postgres@/{POSTGRES_DATABASE}?host=/var/run/postgresql"
    restart_name: str = "PostgreSQL restarted"

    def restart(self, run_uuid: str) -> None:
        cluster = next(Path("/etc/postgresql").iterdir()).name
        subprocess.run(
            ["pg_ctlcluster", "--skip-systemctl-redirect", cluster, "main", "restart"], check=True
        )

    def hang(self, seconds: float) -> None:
        _stop_for(self._processes(), seconds)

    def resume(self) -> None:
        _resume(self._processes())

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
class RedisCluster:
    """Three masters on the bridge's address, no replicas, each with the append-only file
    fsynced every second, as docs/deployment.md asks: a master restarted keeps its data, and
    the run's slots are away while it is."""

    work: Path
    nodes: dict[int, subprocess.Popen[bytes]] = attrs.Factory(dict)
    key: str = "redis-cluster"
    title: str = "a Redis Cluster of three masters"
    url: str = f"redis+cluster://{GATEWAY}:{REDIS_PORTS[0]}"
    restart_name: str = "the run's Redis Cluster master restarted"

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

    def hang(self, seconds: float) -> None:
        _stop_for(self._processes(), seconds)

    def resume(self) -> None:
        _resume(self._processes())

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
