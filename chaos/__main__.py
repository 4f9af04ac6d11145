"""`python -m chaos`: the PostgreSQL case, the Redis Cluster case, then SQLite on a disk that
fills up. See the package's docstring."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import attrs
import requests

from bench.common import RESULTS, VENV_BIN, machine, table
from chaos.balancer import balancer, ensure_installed
from chaos.databases import Database, Postgres, RedisCluster, SqliteOnSmallDisk
from chaos.hosts import GATEWAY, Host, network
from chaos.workload import TASK_SECONDS, Workers

TASKS = 20_000
WORKERS = 16
#: Longer than the database hangs: a lease outlives an outage its heartbeats could not reach.
LEASE_SECONDS = 30
SERVER_PORT = 8000
USER, PASSWORD = "chaos", "chaos-harness-password"
#: How long the run may take in all before the harness gives up on it.
RUN_SECONDS = 420
#: A worker cut off from the load balancer, this long: past its tasks' leases.
PARTITION_SECONDS = LEASE_SECONDS + 10


@attrs.define
class Fault:
    name: str
    #: At what fraction of the run's tasks done it happens.
    at: float
    act: Callable[[], None]
    started: float | None = None
    ended: float | None = None


@attrs.define
class Samples:
    """The run's tasks done, over time, read through the load balancer twice a second."""

    points: list[tuple[float, int]] = attrs.Factory(list)

    def done_at(self, moment: float) -> int:
        before = [done for t, done in self.points if t <= moment]
        return before[-1] if before else 0

    def rate(self, start: float, end: float) -> float | None:
        first, last = self.done_at(start), self.done_at(end)
        if end <= start:
            return None
        return (last - first) / (end - start)

    def recovered(self, after: float, rate: float) -> float | None:
        """Seconds from `after` until a second did at least half of `rate`."""
        for t, _ in self.points:
            if t >= after:
                one = self.rate(t, t + 1.0)
                if one is not None and one >= rate / 2:
                    return t - after
        return None


def _serve(host: Host, work: Path, database_url: str) -> None:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "DATABASE_URL": database_url,
        "TASKFARM_ADMIN_USER": USER,
        "TASKFARM_ADMIN_PASSWORD": PASSWORD,
    }
    command = [str(VENV_BIN / "taskfarm"), "serve", "--host", host.address]
    command += ["--port", str(SERVER_PORT)]
    host.start(command, env, str(work / f"{host.name}.log"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(requests.RequestException):
            if requests.get(f"http://{host.address}:{SERVER_PORT}/readyz", timeout=2).ok:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{host.name} did not come up; see {work / host.name}.log")


def _partition(host: Host) -> None:
    host.cut_off()
    try:
        time.sleep(PARTITION_SECONDS)
    finally:
        host.reconnect()


@contextlib.contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM ends the harness as Ctrl-C does: through every cleanup on the way out."""

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


#: The cases, by the name `CHAOS_BACKENDS` gives them (all, by default, one after another).
DATABASES: dict[str, Callable[[Path], contextlib.AbstractContextManager[Database]]] = {
    "postgres": Postgres.opened,
    "redis-cluster": RedisCluster.opened,
    "sqlite-disk-full": SqliteOnSmallDisk.opened,
}


def main() -> int:
    ensure_installed()
    chosen = os.environ.get("CHAOS_BACKENDS", ",".join(DATABASES)).split(",")
    for key in chosen:
        report = _case(key, DATABASES[key])
        (RESULTS / f"chaos-{key}.txt").write_text(report)
        print(report)
    return 0


def _case(key: str, opened: Callable[[Path], contextlib.AbstractContextManager[Database]]) -> str:
    with (
        _interruptible(),
        tempfile.TemporaryDirectory(prefix="tfchaos-") as directory,
        # The database goes last: once the hosts and their servers are gone.
        contextlib.ExitStack() as last,
        network(["h1", "h2", "h3", "w1"]) as hosts,
    ):
        work = Path(directory)
        database = last.enter_context(opened(work))
        *hosts, apart = hosts
        for host in hosts:
            _serve(host, work, database.url)
        with balancer(GATEWAY, hosts, SERVER_PORT, work) as api:
            try:
                return _run(api, hosts, apart, work, database)
            finally:
                # Whatever a fault was doing when the harness stopped, the database goes on.
                database.resume()
                keep = os.environ.get("CHAOS_KEEP")
                if keep:
                    shutil.copytree(work, Path(keep) / key, dirs_exist_ok=True)


def _run(api: str, hosts: list[Host], apart: Host, work: Path, database: Database) -> str:
    admin = requests.Session()
    admin.auth = (USER, PASSWORD)
    run = admin.post(api + "run", json={"numTasks": TASKS, "leaseSeconds": LEASE_SECONDS})
    run_uuid = run.json()["uuid"]
    token = admin.post(api + "tokens", json={"run": run_uuid}).json()["token"]
    crashed = hosts[0]
    faults = [
        Fault(f"kill -9 of server host {crashed.name}", 0.10, crashed.crash),
        Fault(f"{crashed.name} started again", 0.20, lambda: _serve(crashed, work, database.url)),
        *[
            Fault(name, at, act)
            for (name, act), at in zip(database.faults(run_uuid), (0.35, 0.55), strict=False)
        ],
        Fault(
            f"a worker's host cut off for {PARTITION_SECONDS} s (its lease is {LEASE_SECONDS} s)",
            0.70,
            lambda: _partition(apart),
        ),
    ]
    samples = Samples()
    stopped = threading.Event()

    def sample() -> None:
        while not stopped.wait(0.5):
            with contextlib.suppress(requests.RequestException, KeyError, ValueError):
                info = admin.get(api + f"runs/{run_uuid}", timeout=2).json()
                samples.points.append((time.monotonic(), int(info["numDone"])))

    def inject() -> None:
        for fault in faults:
            while not stopped.is_set():
                done = samples.points[-1][1] if samples.points else 0
                if done >= fault.at * TASKS:
                    break
                time.sleep(0.1)
            if stopped.is_set():
                return
            fault.started = time.monotonic()
            fault.act()
            fault.ended = time.monotonic()

    def unfinished() -> bool:
        return not samples.points or samples.points[-1][1] < TASKS

    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    workers = Workers(api, token, run_uuid, work, env, WORKERS, apart.name)
    workers.unfinished = unfinished
    threads = [threading.Thread(target=f, daemon=True) for f in (sample, inject)]
    started = time.monotonic()
    workers.start()
    for thread in threads:
        thread.start()
    try:
        finished = workers.wait(RUN_SECONDS)
    finally:
        ended = time.monotonic()
        stopped.set()
        for thread in threads:
            thread.join()
        workers.stop()
    info = admin.get(api + f"runs/{run_uuid}", timeout=10).json()
    return _report(database, info, workers, faults, samples, started, ended, finished)


def _report(
    database: Database,
    info: dict[str, object],
    workers: Workers,
    faults: list[Fault],
    samples: Samples,
    started: float,
    ended: float,
    finished: bool,
) -> str:
    executions = workers.executions()
    done = int(str(info["numDone"]))
    once = sum(1 for task in range(TASKS) if len(executions.get(task, [])) == 1)
    again = [ran for ran in executions.values() if len(ran) > 1]
    # The published client gives up on any error, between running a task and reporting it.
    by_published = sum(any(name.startswith("published") for name in ran) for ran in again)
    # A worker cut off past its leases runs the tasks it holds, which others then run too.
    apart = sum(workers.apart.name in ran for ran in again)
    # Neither of those: a task handed to a second worker while the first could still report.
    unexplained = sum(
        workers.apart.name not in ran and not any(name.startswith("published") for name in ran)
        for ran in again
    )
    first = min((f.started for f in faults if f.started is not None), default=ended)
    last = max((f.ended for f in faults if f.ended is not None), default=ended)
    before = samples.rate(started, first)
    fault_rows = [
        [
            fault.name,
            "not reached" if fault.started is None else f"{fault.started - started:.1f}",
            "n/a"
            if fault.ended is None or before is None
            else _seconds(samples.recovered(fault.ended, before)),
        ]
        for fault in faults
    ]
    summary = [
        ["tasks", f"{TASKS:,}"],
        ["done (server)", f"{done:,}"],
        ["ran exactly once", f"{once:,}"],
        ["ran more than once (duplicates)", f"{len(again):,}"],
        ["of which one run was the published client's", f"{by_published:,}"],
        ["of which one run was the cut-off worker's (expected)", f"{apart:,}"],
        ["run more than once otherwise (must be 0)", f"{unexplained:,}"],
        ["lost (not done at the end)", f"{TASKS - done:,}"],
        ["updates refused as another worker's (409)", f"{workers.lost_leases():,}"],
        ["workers restarted after dying", f"{workers.restarts():,}"],
        ["finished", "yes" if finished else f"no, cut at {RUN_SECONDS} s"],
        ["wall time, s", f"{ended - started:.1f}"],
        ["tasks/s before the faults", _rate(before)],
        ["tasks/s during them", _rate(samples.rate(first, last))],
        ["tasks/s after them", _rate(samples.rate(last, ended))],
        *database.checks(),
    ]
    return (
        "\n\n".join(
            [
                f"# Chaos, {database.title}",
                machine(),
                f"Three server hosts (network namespaces, `taskfarm serve`, one process each) "
                f"behind HAProxy, over {database.title}; {WORKERS} workers, half "
                "`taskfarm work -j 2`, "
                f"half the published client, over a run of {TASKS:,} tasks of "
                f"{TASK_SECONDS * 1000:.0f} ms each with a "
                f"{LEASE_SECONDS} s lease; one `taskfarm work` runs on a host of its own, which "
                "is cut off past the lease. Faults come one after another as the run reaches "
                "each fraction of its tasks; recovery is the time from the fault's end until a "
                "second did at least half the tasks a second did before the first fault. A "
                "task the cut-off worker held is run again by another once its lease ends, and "
                "the cut-off worker's late report of it is refused: those runs are expected.",
                table(["", ""], summary),
                table(["fault", "at, s", "recovered in, s"], fault_rows),
                "Tasks done per second, by 5 s of the run:",
                table(["from, s", "tasks/s"], _timeline(samples, started, ended)),
            ]
        )
        + "\n"
    )


def _timeline(samples: Samples, started: float, ended: float) -> list[list[object]]:
    steps = range(0, int(ended - started) + 1, 5)
    return [[step, _rate(samples.rate(started + step, started + step + 5))] for step in steps]


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f}"


def _seconds(value: float | None) -> str:
    return "not within the run" if value is None else f"{value:.1f}"


if __name__ == "__main__":
    sys.exit(main())
