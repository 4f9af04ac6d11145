"""A real `taskfarm serve` in a subprocess, for tests that talk to it as clients do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

USER = "scientist"
PASSWORD = "correct horse battery staple"
STARTUP_SECONDS = 60


@attrs.frozen
class LiveServer:
    url: str
    user: str = USER
    password: str = PASSWORD
    process: subprocess.Popen[bytes] | None = attrs.field(default=None, eq=False, repr=False)

    def crash(self) -> None:
        """Kills every process of the server at once, as a power cut would (SIGKILL)."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    @property
    def api(self) -> str:
        """The base URL the published client calls `url_base`."""
        return self.url + "api/"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TASKFARM_ADMIN_USER": USER,
        "TASKFARM_ADMIN_PASSWORD": PASSWORD,
        **extra,
    }
    env.pop("TASKFARM_SECRET_KEY", None)
    return env


@contextmanager
def running_server(
    database_url: str, log: Path, *, workers: int = 2, env: Mapping[str, str] | None = None
) -> Iterator[LiveServer]:
    """Starts `taskfarm serve` on a free port, with `env` added to its environment, waits until
    it answers, stops it afterwards."""
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("taskfarm")),
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    with log.open("wb") as output:
        process = subprocess.Popen(
            command,
            env=server_env(database_url, **(env or {})),
            stdout=output,
            stderr=subprocess.STDOUT,
            # A group of its own, which `crash` kills whole: its server processes too.
            start_new_session=True,
        )
        try:
            server = LiveServer(url=f"http://127.0.0.1:{port}/", process=process)
            _wait_until_up(server, process, log)
            yield server
        finally:
            if process.poll() is None:  # not crashed
                _stop(process)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _wait_until_up(server: LiveServer, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"taskfarm serve exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"taskfarm serve did not answer in {STARTUP_SECONDS} s:\n{log.read_text()}")


#: Fixtures of a live server on each shared backend take these params (with these ids) and
#: pass the request to `database_url`.
BACKEND_PARAMS = ["sqlite", "postgres_url", "redis_url"]
BACKEND_IDS = ["sqlite", "postgresql", "redis"]


def database_url(request: Any, folder: Path) -> str:
    """The `DATABASE_URL` of the backend a `BACKEND_PARAMS` fixture was given: a SQLite file
    in `folder`, or the PostgreSQL schema or Redis database of the fixture it names."""
    if request.param == "sqlite":
        return f"sqlite:///{folder / 'taskfarm.db'}"
    return str(request.getfixturevalue(request.param))
