"""The stress protocol of the original taskfarm study, with the unchanged published client.

N client processes share one run of 256 tasks; each takes a task (`worker.task`: the claim,
then the client reads the task's progress), reports progress 10 times (`worker.update`) and
says it is done (`worker.done`), until no task is left. Mean time per call, against N, for our
server on each backend and for the old server, plotted as the study's Figure 1.

Each point stops its clients after `POINT_SECONDS` (BENCH_PAPER_POINT_SECONDS) so that
`make bench` stays short: the means are then over the calls made until then, and the table says
how many of the 256 tasks were done. Set BENCH_PAPER_POINT_SECONDS=900 for complete runs.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from multiprocessing.synchronize import Barrier
from typing import Any

import attrs
from taskfarm_worker import TaskFarmWorker

from bench import servers
from bench.backends import database
from bench.client import Api
from bench.common import PASSWORD, RESULTS, USER, Target, fmt, table, write_result

CLIENTS = (1, 2, 4, 8, 16, 32, 64)
NUM_TASKS = 256
UPDATES = 10
POINT_SECONDS = float(os.environ.get("BENCH_PAPER_POINT_SECONDS", "6"))
CALLS = ("getTask", "update", "done")
OLD_WORKERS = 4
#: How long the clients may take to log in and register before a point is given up.
START_SECONDS = 120


@attrs.frozen
class Point:
    server: str
    clients: int
    #: Call name: (number of calls, total seconds).
    calls: dict[str, tuple[int, float]]
    tasks_done: int
    duplicates: int
    seconds: float
    cut: bool

    def mean_ms(self, call: str) -> float | None:
        count, total = self.calls.get(call, (0, 0.0))
        return 1000 * total / count if count else None


def _client(api: str, token: str, run: str, start_line: Barrier, seconds: float, out: Any) -> None:
    try:
        out.put(_work(api, token, run, start_line, seconds))
    except Exception as error:
        start_line.abort()  # the others need not wait for this one
        out.put(error)


def _work(
    api: str, token: str, run: str, start_line: Barrier, seconds: float
) -> tuple[dict[str, list[float]], list[int]]:
    # The token as username with an empty password: the client logs in without the KDF.
    worker = TaskFarmWorker(token, "", run, url_base=api)
    start_line.wait(timeout=START_SECONDS)
    deadline = time.perf_counter() + seconds
    calls: dict[str, list[float]] = {call: [0, 0.0] for call in CALLS}
    tasks: list[int] = []

    def timed(call: str, action: Any, *args: Any) -> Any:
        start = time.perf_counter()
        result = action(*args)
        calls[call][0] += 1
        calls[call][1] += time.perf_counter() - start
        return result

    while time.perf_counter() < deadline:
        start = time.perf_counter()
        task = worker.task
        if task is None:
            break  # the last claim, answered 204, is not a claim that handed out a task
        calls["getTask"][0] += 1
        calls["getTask"][1] += time.perf_counter() - start
        for step in range(1, UPDATES + 1):
            timed("update", worker.update, 100.0 * step / UPDATES)
        timed("done", worker.done)
        tasks.append(task)
    return calls, tasks


def measure_point(server: servers.Server, name: str, clients: int) -> Point:
    api = Api(server.url)
    token = api.log_in(USER, PASSWORD)
    run = api.new_run(NUM_TASKS)
    api.close()
    context = multiprocessing.get_context("fork")
    start_line = context.Barrier(clients + 1)
    out = context.Queue()
    children = [
        context.Process(
            target=_client,
            args=(server.url + "api/", token, run, start_line, POINT_SECONDS, out),
        )
        for _ in range(clients)
    ]
    for child in children:
        child.start()
    try:
        start_line.wait(timeout=START_SECONDS)
        start = time.perf_counter()
        results = [out.get(timeout=POINT_SECONDS + 60) for _ in children]
        seconds = time.perf_counter() - start
        errors = [r for r in results if isinstance(r, Exception)]
        if errors:
            raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]!r}")
    finally:
        for child in children:
            child.join(10)
            if child.is_alive():
                child.kill()
                child.join()
    calls: dict[str, tuple[int, float]] = {}
    tasks: list[int] = []
    for client_calls, client_tasks in results:
        tasks += client_tasks
        for call, (count, total) in client_calls.items():
            before = calls.get(call, (0, 0.0))
            calls[call] = (before[0] + count, before[1] + total)
    done = len(set(tasks))
    point = Point(
        server=name,
        clients=clients,
        calls=calls,
        tasks_done=done,
        duplicates=len(tasks) - done,
        seconds=seconds,
        cut=done < NUM_TASKS,
    )
    means = ", ".join(f"{c} {fmt(point.mean_ms(c), 2)} ms" for c in CALLS)
    print(f"  {name}, {clients} clients: {means}; {done} tasks in {seconds:.1f} s", flush=True)
    return point


@contextmanager
def _ours(backend: str) -> Iterator[servers.Server]:
    with database(backend) as url, servers.ours(url) as server:
        yield server


@contextmanager
def _old() -> Iterator[servers.Server]:
    with database("postgres") as url, servers.old(url, OLD_WORKERS) as server:
        yield server


def setups() -> list[tuple[str, AbstractContextManager[servers.Server]]]:
    return [
        ("ours, PostgreSQL", _ours("postgres")),
        ("ours, Redis", _ours("redis")),
        ("ours, SQLite", _ours("sqlite")),
        (f"old 0.4.0, PostgreSQL, gunicorn -w {OLD_WORKERS}", _old()),
    ]


def measure(clients: Sequence[int] = CLIENTS) -> tuple[list[Point], list[str]]:
    points: list[Point] = []
    notes: list[str] = []
    for name, started in setups():
        with started as server:
            for count in clients:
                try:
                    point = measure_point(server, name, count)
                except Exception as error:
                    notes.append(
                        f"{name}, {count} clients: failed ({error}); larger counts skipped"
                    )
                    break
                points.append(point)
                if point.tasks_done == 0:
                    notes.append(f"{name}, {count} clients: no task done; larger counts skipped")
                    break
    return points, notes


def report(points: Sequence[Point], notes: Sequence[str]) -> str:
    rows = []
    for p in points:
        status = f"{p.tasks_done} of {NUM_TASKS} (cut at {fmt(POINT_SECONDS, 0)} s)"
        rows.append(
            [
                p.server,
                p.clients,
                *(fmt(p.mean_ms(call), 2) for call in CALLS),
                f"{p.seconds:.1f}",
                str(p.tasks_done) if not p.cut else status,
                p.duplicates,
            ]
        )
    _plot(points)
    ratio_rows = _ratios(points)
    parts = [
        f"{NUM_TASKS} tasks, {UPDATES} progress updates per task, `taskfarm-worker` 0.4.0 in "
        "N client processes on the same two cores as the server. `getTask` is the client's "
        "`worker.task`: the claim and the read of the task's progress that follows it (two "
        "requests); `update` and `done` are one request each. Means over all calls of all "
        f"clients; a point stops after {fmt(POINT_SECONDS, 0)} s.",
        table(
            [
                "server",
                "clients",
                "getTask ms",
                "update ms",
                "done ms",
                "seconds",
                "tasks done",
                "handed out twice",
            ],
            rows,
        ),
    ]
    if ratio_rows:
        parts += [
            "Old server's mean time per call over ours, at the same number of clients:",
            table(["ours on", "clients", "getTask", "update", "done"], ratio_rows),
        ]
    if notes:
        parts.append("\n".join(f"- {note}" for note in notes))
    parts.append("![mean time per call](paper.png)")
    return "\n\n".join(parts)


def _ratios(points: Sequence[Point]) -> list[list[object]]:
    old = {p.clients: p for p in points if p.server.startswith("old")}
    rows: list[list[object]] = []
    for p in points:
        if p.server.startswith("old") or p.clients not in old:
            continue
        base = old[p.clients]
        cells = []
        for call in CALLS:
            mine, theirs = p.mean_ms(call), base.mean_ms(call)
            cells.append(fmt(theirs / mine, 1) if mine and theirs else "n/a")
        rows.append([p.server.removeprefix("ours, "), p.clients, *cells])
    return rows


def _plot(points: Sequence[Point]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    styles = {"getTask": "-o", "update": "--s", "done": ":^"}
    colours: dict[str, Any] = {}
    for name in dict.fromkeys(p.server for p in points):
        series = sorted((p for p in points if p.server == name), key=lambda p: p.clients)
        for call in CALLS:
            measured = [(p.clients, p.mean_ms(call)) for p in series]
            xs = [clients for clients, mean in measured if mean is not None]
            ys = [mean for _, mean in measured if mean is not None]
            (line,) = axes.plot(
                xs, ys, styles[call], color=colours.get(name), label=f"{name}: {call}"
            )
            colours[name] = line.get_color()
    axes.set_xscale("log", base=2)
    axes.set_xticks(CLIENTS, [str(n) for n in CLIENTS])
    axes.set_yscale("log")
    axes.set_xlabel("number of clients")
    axes.set_ylabel("mean time per call (ms)")
    axes.set_title(f"{NUM_TASKS} tasks, {UPDATES} updates per task")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="x-small", ncol=2)
    figure.tight_layout()
    figure.savefig(RESULTS / "paper.png", dpi=80)
    plt.close(figure)


#: The target: the old server's time per task over ours, on each backend.
PAPER_BOUND = 2.0


def _time_per_task(point: Point) -> float | None:
    """A task's calls, as the protocol makes them: a claim, `UPDATES` updates, done."""
    get_task, update, done = (point.mean_ms(call) for call in CALLS)
    if get_task is None or update is None or done is None:
        return None
    return get_task + UPDATES * update + done


def targets(points: Sequence[Point]) -> list[Target]:
    """Per backend of ours, the old server's time per task over ours, at each number of
    clients both were measured with; their geometric mean."""
    old = {p.clients: _time_per_task(p) for p in points if p.server.startswith("old")}
    found: list[Target] = []
    for name in dict.fromkeys(p.server for p in points if not p.server.startswith("old")):
        ratios = [
            theirs / mine
            for p in points
            if p.server == name and (mine := _time_per_task(p)) and (theirs := old.get(p.clients))
        ]
        value = statistics.geometric_mean(ratios) if ratios else None
        found.append(
            (
                f"paper protocol, {name.removeprefix('ours, ')}: old server's time per task "
                "÷ ours (geometric mean over client counts)",
                value,
                PAPER_BOUND,
                "min",
            )
        )
    return found


def run() -> list[Target]:
    points, notes = measure()
    write_result("paper", "The paper's protocol: mean time per call", report(points, notes))
    return targets(points)


if __name__ == "__main__":
    run()
