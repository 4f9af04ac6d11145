"""End to end on one machine: `taskfarm work -j 4 -- true` against GNU parallel and xargs.

Per backend, `taskfarm serve --workers 2` on this machine. Each round, in turn:

- ours: one `taskfarm work RUN -j 4 -- true` over a new run of `TASKS` tasks, from start to
  exit (its login, registration and every claim and report included);
- ours x8: eight `taskfarm work RUN -j 2 -- true` at once over one run of `TASKS` tasks;
- GNU parallel: `parallel -j 4 true` over `TASKS` arguments (no network, no database);
- xargs: `xargs -P 4 -n 1 true` over the same: the cost of starting the commands alone.

Tasks per second are `TASKS` over the wall time; the overhead per task is the wall time per
task beyond xargs' (what a farm adds to starting the command), and the server's CPU per task
is the CPU time of its processes over the round, per task. GNU parallel is installed with
apt-get where missing: it is a benchmark dependency only.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable

import attrs
import requests

from bench import servers
from bench.backends import database
from bench.common import PASSWORD, USER, VENV_BIN, Target, fmt, median, ratio, table, write_result
from bench.cpu import CpuMeter

BACKENDS = ("sqlite", "postgres", "redis")
TASKS = 2000
JOBS = 4
ROUNDS = 3
MANY_WORKERS = 8
MANY_JOBS = 2
TASKFARM = str(VENV_BIN / "taskfarm")
TOOLS = ("ours", f"ours x{MANY_WORKERS}", "parallel", "xargs")


@attrs.frozen
class Round:
    seconds: float
    server_cpu: float | None = None


def ensure_parallel() -> None:
    if shutil.which("parallel") is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", "parallel"], check=True)


def _timed(run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def _arguments() -> bytes:
    return "".join(f"{i}\n" for i in range(TASKS)).encode()


def _local(command: list[str]) -> Round:
    def run() -> None:
        subprocess.run(command, input=_arguments(), check=True, stdout=subprocess.DEVNULL)

    return Round(_timed(run))


def _ours(server: servers.Server, workers: int, jobs: int) -> Round:
    login = {"TASKFARM_URL": server.url, "TASKFARM_USER": USER, "TASKFARM_PASSWORD": PASSWORD}
    created = requests.post(
        f"{server.url}api/run", json={"numTasks": TASKS, "leaseSeconds": 600}, auth=(USER, PASSWORD)
    )
    run_uuid = created.json()["uuid"]
    command = [TASKFARM, "work", run_uuid, "-j", str(jobs), "--", "true"]
    meter = CpuMeter(server)
    before = meter.snapshot()

    def run() -> None:
        started = [
            subprocess.Popen(command, env={**_environ(), **login}, stderr=subprocess.DEVNULL)
            for _ in range(workers)
        ]
        assert all(process.wait() == 0 for process in started)

    seconds = _timed(run)
    cpu = meter.since(before).server
    done = requests.get(f"{server.url}api/runs/{run_uuid}", auth=(USER, PASSWORD)).json()
    assert done["numDone"] == TASKS, done
    return Round(seconds, cpu)


def _environ() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if not key.startswith("TASKFARM")}


def measure_backend(backend: str) -> dict[str, list[Round]]:
    rounds: dict[str, list[Round]] = {tool: [] for tool in TOOLS}
    with database(backend) as url, servers.ours(url, workers=2) as server:
        _ours(server, 1, JOBS)  # a first run warms the server's caches and the database
        for _ in range(ROUNDS):
            rounds["ours"].append(_ours(server, 1, JOBS))
            rounds[f"ours x{MANY_WORKERS}"].append(_ours(server, MANY_WORKERS, MANY_JOBS))
            rounds["parallel"].append(_local(["parallel", "-j", str(JOBS), "true"]))
            rounds["xargs"].append(_local(["xargs", "-P", str(JOBS), "-n", "1", "true"]))
    return rounds


def _per_second(rounds: list[Round]) -> float:
    return TASKS / median([r.seconds for r in rounds])


def report(measured: dict[str, dict[str, list[Round]]]) -> str:
    rows = []
    for backend, rounds in measured.items():
        xargs_ms = 1000 * median([r.seconds for r in rounds["xargs"]]) / TASKS
        for tool in TOOLS:
            wall = [r.seconds for r in rounds[tool]]
            cpu = [r.server_cpu for r in rounds[tool] if r.server_cpu is not None]
            per_task_ms = 1000 * median(wall) / TASKS
            rows.append(
                [
                    backend,
                    tool,
                    fmt(TASKS / median(wall), 0),
                    fmt(TASKS / max(wall), 0),
                    fmt(per_task_ms, 2),
                    fmt(per_task_ms - xargs_ms, 2) if tool != "xargs" else "-",
                    fmt(1000 * median(cpu) / TASKS, 2) if cpu else "-",
                    fmt(ratio(TASKS / median(wall), _per_second(rounds["parallel"])), 2),
                ]
            )
    headers = [
        "backend",
        "tool",
        "tasks/s (median)",
        "tasks/s (slowest)",
        "ms per task",
        "overhead ms per task (beyond xargs)",
        "server CPU ms per task",
        "÷ GNU parallel",
    ]
    return (
        __doc__
        + f"\n{TASKS:,} tasks of `true`, -j {JOBS}; medians of {ROUNDS} rounds.\n\n"
        + table(headers, rows)
        + "\n"
    )


def targets(measured: dict[str, dict[str, list[Round]]]) -> list[Target]:
    found: list[Target] = []
    for backend, rounds in measured.items():
        ours = _per_second(rounds["ours"])
        many = _per_second(rounds[f"ours x{MANY_WORKERS}"])
        found += [
            (
                f"end to end, {backend}: taskfarm work ÷ GNU parallel",
                ratio(ours, _per_second(rounds["parallel"])),
                1.0,
                "min",
            ),
            (
                f"end to end, {backend}: taskfarm work ÷ xargs -P",
                ratio(ours, _per_second(rounds["xargs"])),
                0.5,
                "min",
            ),
            (
                f"end to end, {backend}: {MANY_WORKERS} x taskfarm work -j {MANY_JOBS} ÷ parallel",
                ratio(many, _per_second(rounds["parallel"])),
                1.0,
                "min",
            ),
        ]
    return found


def run() -> list[Target]:
    ensure_parallel()
    measured = {backend: measure_backend(backend) for backend in BACKENDS}
    write_result(
        "end_to_end", "End to end: taskfarm work, GNU parallel and xargs", report(measured)
    )
    return targets(measured)


if __name__ == "__main__":
    ensure_parallel()
    chosen = sys.argv[1:] or list(BACKENDS)
    print(report({backend: measure_backend(backend) for backend in chosen}))
