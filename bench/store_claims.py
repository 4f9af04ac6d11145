"""Claims per second of each store, in process: the ceiling under any HTTP server.

Each point claims one task at a time from a fresh run of 10**9 tasks for a fixed time, from
N threads sharing one store, or from N processes each opening its own (as N server processes
do). The memory store is one process's memory, so it has threads only.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import multiprocessing
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from multiprocessing.synchronize import Barrier as ProcessBarrier
from typing import Any

import attrs

from bench.backends import POSTGRES_ASYNC_COMMIT, database
from bench.common import RESULTS, Target, fmt, table, write_result
from taskfarm.bootstrap import open_storage
from taskfarm.domain import RunPolicy, Wanted
from taskfarm.ports import Storage

ADAPTERS = ("memory", "sqlite", "postgres", POSTGRES_ASYNC_COMMIT, "redis")
THREADS = (1, 2, 4, 8)
PROCESSES = (1, 2, 4)
SECONDS = 1.5
NUM_TASKS = 10**9
#: A point waits this long for its processes before giving up on them.
JOIN_SECONDS = 60


@attrs.frozen
class Point:
    adapter: str
    mode: str  # "threads" or "processes"
    concurrency: int
    claims: int
    seconds: float
    errors: int

    @property
    def per_second(self) -> float:
        return self.claims / self.seconds


def _claim_on_a_loop(
    storage: Storage, run: str, ready: Callable[[], float], seconds: float
) -> tuple[int, int, float]:
    """Claims on an event loop of this thread's own, as a server process does: one claim to
    open the loop's connections, then `ready()` (which waits for the others and says when the
    clock started), then one task at a time for `seconds`: (claims, errors, when it stopped)."""
    worker = uuid.uuid4().hex

    async def claim() -> None:
        await storage.runs.claim_batch(run, [Wanted(worker, 1)], dt.datetime.now(dt.UTC))

    async def claiming() -> tuple[int, int, float]:
        try:
            await claim()
            deadline = ready() + seconds
            claims = errors = 0
            while time.perf_counter() < deadline:
                try:
                    await claim()
                    claims += 1
                except Exception:
                    errors += 1
            return claims, errors, time.perf_counter()
        finally:
            await storage.leave_loop()

    return asyncio.run(claiming())


def _new_run(storage: Storage) -> str:
    run = uuid.uuid4().hex
    storage.runs.create_run(run, NUM_TASKS, RunPolicy())
    return run


def with_threads(adapter: str, storage: Storage, threads: int, seconds: float) -> Point:
    """Each thread awaits its claims on an event loop of its own, as the event loops of as
    many server processes would, sharing one store."""
    run = _new_run(storage)
    results: list[tuple[int, int, float]] = []
    start = [0.0]
    # The clock starts once every thread has warmed up its connection.
    start_line = threading.Barrier(
        threads, action=lambda: start.__setitem__(0, time.perf_counter())
    )

    def ready() -> float:
        start_line.wait()
        return start[0]

    def work() -> None:
        results.append(_claim_on_a_loop(storage, run, ready, seconds))

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(JOIN_SECONDS)
    return _point(adapter, "threads", threads, results, start[0])


def _process_main(url: str, run: str, start_line: ProcessBarrier, seconds: float, out: Any) -> None:
    storage = open_storage(url)

    def ready() -> float:
        start_line.wait()
        return time.perf_counter()

    out.put(_claim_on_a_loop(storage, run, ready, seconds))
    storage.close()


def with_processes(adapter: str, url: str, processes: int, seconds: float) -> Point:
    storage = open_storage(url)
    run = _new_run(storage)
    # Forked children must not share the parent's connections.
    storage.close()
    context = multiprocessing.get_context("fork")
    start_line = context.Barrier(processes + 1)
    out = context.Queue()
    children = [
        context.Process(target=_process_main, args=(url, run, start_line, seconds, out))
        for _ in range(processes)
    ]
    for child in children:
        child.start()
    start_line.wait(timeout=JOIN_SECONDS)
    start = time.perf_counter()
    results = [out.get(timeout=JOIN_SECONDS + seconds) for _ in children]
    for child in children:
        child.join(JOIN_SECONDS)
        if child.is_alive():
            child.kill()
    # Each child's clock started when it passed the barrier, at about `start`.
    stopped = [(claims, errors, start + seconds) for claims, errors, _ in results]
    return _point(adapter, "processes", processes, stopped, start)


def _point(
    adapter: str,
    mode: str,
    concurrency: int,
    results: Sequence[tuple[int, int, float]],
    start: float,
) -> Point:
    claims = sum(r[0] for r in results)
    errors = sum(r[1] for r in results)
    seconds = max(r[2] for r in results) - start
    point = Point(adapter, mode, concurrency, claims, seconds, errors)
    print(f"  {adapter} {concurrency} {mode}: {point.per_second:,.0f} claims/s", flush=True)
    return point


def measure(adapters: Sequence[str] = ADAPTERS, seconds: float = SECONDS) -> list[Point]:
    points: list[Point] = []
    for adapter in adapters:
        with database(adapter) as url:
            storage = open_storage(url)
            storage.create_schema()
            points += [with_threads(adapter, storage, n, seconds) for n in THREADS]
            storage.close()
            if adapter != "memory":
                points += [with_processes(adapter, url, n, seconds) for n in PROCESSES]
    return points


def report(points: Sequence[Point]) -> str:
    def lookup(adapter: str, mode: str, n: int) -> Point | None:
        return next(
            (p for p in points if (p.adapter, p.mode, p.concurrency) == (adapter, mode, n)),
            None,
        )

    adapters = list(dict.fromkeys(p.adapter for p in points))
    columns = [("threads", n) for n in THREADS] + [("processes", n) for n in PROCESSES]
    singular = {"threads": "thread", "processes": "process"}
    headers = ["store", *(f"{n} {singular[mode] if n == 1 else mode}" for mode, n in columns)]
    rows = []
    scaling = []
    for adapter in adapters:
        cells = []
        for mode, n in columns:
            point = lookup(adapter, mode, n)
            cells.append("n/a" if point is None else fmt(point.per_second))
        rows.append([adapter, *cells])
        base = lookup(adapter, "threads", 1)
        best = max((p for p in points if p.adapter == adapter), key=lambda p: p.per_second)
        if base is not None:
            unit = singular[best.mode] if best.concurrency == 1 else best.mode
            scaling.append(
                [
                    adapter,
                    fmt(1e6 / base.per_second, 0),
                    f"{best.concurrency} {unit}",
                    fmt(best.per_second / base.per_second, 2),
                ]
            )
    errors = sum(p.errors for p in points)
    _plot(points, adapters)
    return "\n\n".join(
        [
            f"One task per claim, from a fresh run of 10**9 tasks, {fmt(SECONDS)} s per point; "
            "claims per second over all threads or processes. Each thread or process awaits "
            "its claims (`RunStore.claim_batch`, one claim a batch) on an event loop of its "
            "own, as a server process does, without the batching a server does on top. "
            "Threads share one store object; processes open one each, as server processes do. "
            f"`{POSTGRES_ASYNC_COMMIT}` is PostgreSQL with commits that do not wait for the "
            "disk, set in the URL's options: not taskfarm's setting, but what skipping the "
            "commit's flush would gain.",
            table(headers, rows),
            "Latency of one claim alone, and the best point against one thread:",
            table(["store", "µs per claim, 1 thread", "best point", "best / 1 thread"], scaling),
            f"Claims that raised an error: {errors}.",
            "![claims per second](store_claims.png)",
        ]
    )


def _plot(points: Sequence[Point], adapters: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    colours: dict[str, Any] = {}
    for adapter in adapters:
        for mode, style in (("threads", "-o"), ("processes", "--s")):
            series = sorted(
                (p for p in points if p.adapter == adapter and p.mode == mode),
                key=lambda p: p.concurrency,
            )
            if not series:
                continue
            (line,) = axes.plot(
                [p.concurrency for p in series],
                [p.per_second for p in series],
                style,
                label=f"{adapter}, {mode}",
                color=colours.get(adapter),
            )
            colours[adapter] = line.get_color()
    axes.set_xscale("log", base=2)
    axes.set_xticks(THREADS, [str(n) for n in THREADS])
    axes.set_yscale("log")
    axes.set_xlabel("threads or processes")
    axes.set_ylabel("claims per second")
    axes.set_title("Store claims per second, in process")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    figure.savefig(RESULTS / "store_claims.png", dpi=80)
    plt.close(figure)


def run(adapters: Sequence[str] = ADAPTERS) -> list[Target]:
    """Measures, writes bench/results/store_claims.md; no targets of its own."""
    write_result("store_claims", "Store claims per second, in process", report(measure(adapters)))
    return []


if __name__ == "__main__":
    run()
