"""The servers under test, each started on a free port and stopped afterwards: ours
(`taskfarm serve`), the old taskfarm 0.4.0 under gunicorn, and a bare Starlette app."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path

import attrs
import psutil
import psycopg

from bench.backends import libpq
from bench.common import OLD_VENV_BIN, PASSWORD, ROOT, USER, VENV_BIN

STARTUP_SECONDS = 60
STOP_SECONDS = 20


@attrs.frozen
class Server:
    """A running server: its base URL and the process that started it."""

    url: str
    pid: int
    log: Path
    #: The `DATABASE_URL` it serves; None for the bare app, which has none.
    database_url: str | None = None

    def rss_bytes(self) -> int:
        """Resident memory of the server's processes, workers included."""
        parent = psutil.Process(self.pid)
        return sum(p.memory_info().rss for p in [parent, *parent.children(recursive=True)])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database_url: str | None, *, bench_importable: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("TASKFARM_SECRET_KEY", "TASKFARM_LEASE_SECONDS", "TASKFARM_TOKEN_LIFETIME"):
        env.pop(name, None)
    env.pop("DATABASE_URL", None)
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env["TASKFARM_ADMIN_USER"] = USER
    env["TASKFARM_ADMIN_PASSWORD"] = PASSWORD
    env.pop("PYTHONPATH", None)
    if bench_importable:
        # Only for the bare app: the old server must import its own `taskfarm`, not ours.
        env["PYTHONPATH"] = str(ROOT)
    return env


@contextmanager
def _running(command: list[str], env: Mapping[str, str], port: int, name: str) -> Iterator[Server]:
    """Runs `command` in a session of its own until the block ends, once `/` answers."""
    with tempfile.TemporaryDirectory(prefix=f"bench-{name}-") as directory:
        log = Path(directory) / "server.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                command,
                env=env,
                cwd=directory,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                server = Server(
                    url=f"http://127.0.0.1:{port}/",
                    pid=process.pid,
                    log=log,
                    database_url=env.get("DATABASE_URL"),
                )
                _wait_until_up(server, process)
                yield server
            finally:
                _stop(process)


def _wait_until_up(server: Server, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited:\n{server.log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(server.url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"server did not answer in {STARTUP_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        with suppress(subprocess.TimeoutExpired):
            process.wait(timeout=STOP_SECONDS)
    # The process started its own session: its group holds exactly the workers it started.
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@contextmanager
def ours(database_url: str, workers: int = 2) -> Iterator[Server]:
    """`taskfarm serve --workers N` on the database, with the benchmark user."""
    port = free_port()
    command = [str(VENV_BIN / "taskfarm"), "serve", "--port", str(port)]
    command += ["--workers", str(workers)]
    with _running(command, _environment(database_url), port, "ours") as server:
        yield server


@contextmanager
def old(database_url: str, workers: int) -> Iterator[Server]:
    """taskfarm 0.4.0 under `gunicorn -w N`, its tables and user made by its own `adminTF`."""
    env = _environment(database_url)
    admin = str(OLD_VENV_BIN / "adminTF")
    for arguments in (["--init-db"], ["-u", USER, "-p", PASSWORD]):
        done = subprocess.run(
            [admin, *arguments], env=env, cwd=tempfile.gettempdir(), capture_output=True, text=True
        )
        if done.returncode:
            raise RuntimeError(f"adminTF {arguments[0]} failed:\n{done.stderr[-2000:]}")
    port = free_port()
    command = [str(OLD_VENV_BIN / "gunicorn"), "-w", str(workers), "-b", f"127.0.0.1:{port}"]
    command += ["taskfarm:app"]
    with _running(command, env, port, "old") as server:
        yield server


@contextmanager
def bare(workers: int = 2) -> Iterator[Server]:
    """The bare Starlette app of `bench.bare_app` under uvicorn, as `taskfarm serve` runs."""
    port = free_port()
    command = [str(VENV_BIN / "uvicorn"), "bench.bare_app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    with _running(command, _environment(None, bench_importable=True), port, "bare") as server:
        yield server


def write_old_tasks(database_url: str, run: str, count: int) -> None:
    """Writes the run's next `count` tasks into the old server's tables as computing, as its
    claims would have: claiming them one request at a time takes minutes."""
    with psycopg.connect(libpq(database_url)) as connection:
        connection.execute(
            'INSERT INTO tasks (task, status, started, "percentCompleted", run_id) '
            "SELECT g, 'computing', now(), 0, runs.id FROM runs, "
            'generate_series(runs."nextTask", runs."nextTask" + %s - 1) AS g '
            "WHERE runs.uuid = %s",
            (count, run),
        )
        connection.execute(
            'UPDATE runs SET "nextTask" = "nextTask" + %s WHERE uuid = %s', (count, run)
        )
