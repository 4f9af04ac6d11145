"""Scale: a run of 10**9 tasks costs what a run of 10 costs, and claiming many of its tasks does
not slow down the next claim or reading the run's progress.

Per backend, one server process (`--workers 1`, so that its memory is one process's):

- memory: resident set size after creating (and touching) a run of 10**9 tasks, against the
  same after a run of 10 tasks;
- latency: 100,000 tasks of a run of 10**9 are claimed through `POST .../tasks/claim` in batches
  of 1000; then `GET /api/runs/{uuid}` and a single claim are timed on that run and on a fresh
  run in alternating rounds, and compared by their medians.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Callable, Sequence

import attrs
import psutil

from bench import servers
from bench.backends import database
from bench.client import Api
from bench.common import (
    PASSWORD,
    USER,
    Target,
    fmt,
    median,
    percentile,
    ratio,
    table,
    verdict,
    write_result,
)
from taskfarm.blocking import BlockingClaims
from taskfarm.bootstrap import open_storage
from taskfarm.domain import RunPolicy

BACKENDS = ("memory", "sqlite", "postgres", "redis")
NUM_TASKS = 10**9
TO_CLAIM = 100_000
BATCH = 1000
#: Claiming stops here even if fewer than TO_CLAIM tasks were claimed; the table says so.
CLAIM_SECONDS = 30
#: The memory store scans every stored task on each claim: it gets less time, and is cut.
IN_PROCESS_CLAIM_SECONDS = 10
ROUNDS = 6
PER_ROUND = 15
LATENCY_BOUND = 2.0
MEMORY_BOUND = 1.1


@attrs.frozen
class Outcome:
    backend: str
    rss_small: int | None = None
    rss_large: int | None = None
    claimed: int = 0
    claim_seconds: float = 0.0
    #: (operation, "loaded" or "fresh"): seconds of each request.
    latencies: dict[tuple[str, str], list[float]] = attrs.field(factory=dict)
    reason: str = ""
    #: Measured to compare with, not held to the targets.
    reference: bool = False

    def median_ms(self, operation: str, run: str) -> float | None:
        values = self.latencies.get((operation, run))
        return 1000 * median(values) if values else None

    def p90_ms(self, operation: str, run: str) -> float | None:
        values = self.latencies.get((operation, run))
        return 1000 * percentile(values, 0.9) if values else None

    def latency_ratio(self, operation: str) -> float | None:
        return ratio(self.median_ms(operation, "loaded"), self.median_ms(operation, "fresh"))

    @property
    def memory_ratio(self) -> float | None:
        return ratio(self.rss_large, self.rss_small)


def _touch(api: Api, num_tasks: int, worker: str) -> str:
    """A new run, read once and one of its tasks claimed, as a user would."""
    run = api.new_run(num_tasks)
    api.expect(200, "GET", f"/api/runs/{run}")
    api.expect(201, "POST", f"/api/runs/{run}/task", {"worker_uuid": worker})
    return run


def _memory(api: Api, server: servers.Server, worker: str) -> tuple[int, int, str]:
    _touch(api, 10, worker)  # first use: caches and scripts warm up
    _touch(api, 10, worker)
    small = server.rss_bytes()
    large_run = _touch(api, NUM_TASKS, worker)
    return small, server.rss_bytes(), large_run


def _claim_many(api: Api, run: str, worker: str) -> tuple[int, float]:
    start = time.perf_counter()
    claimed = 0
    while claimed < TO_CLAIM and time.perf_counter() - start < CLAIM_SECONDS:
        count = min(BATCH, TO_CLAIM - claimed)
        body = {"worker_uuid": worker, "count": count}
        answer = api.expect(201, "POST", f"/api/runs/{run}/tasks/claim", body)
        claimed += len(answer["tasks"])
    return claimed, time.perf_counter() - start


Timings = dict[tuple[str, str], list[float]]


def _alternating(
    runs: dict[str, str], info: Callable[[str], float], claim: Callable[[str], float]
) -> Timings:
    """Times `info` and `claim` on each run, the runs taking turns to go first, after one
    round that is not kept (the loaded run was just written to heavily)."""
    times: Timings = {}
    order = list(runs.items())
    for round_number in range(ROUNDS + 1):
        for name, run in order if round_number % 2 else order[::-1]:
            infos = [info(run) for _ in range(PER_ROUND)]
            claims = [claim(run) for _ in range(PER_ROUND)]
            if round_number:
                times.setdefault(("run info", name), []).extend(infos)
                times.setdefault(("claim", name), []).extend(claims)
    return times


def _http_latencies(api: Api, runs: dict[str, str], worker: str) -> Timings:
    return _alternating(
        runs,
        lambda run: api.timed("GET", f"/api/runs/{run}"),
        lambda run: api.timed("POST", f"/api/runs/{run}/task", {"worker_uuid": worker}),
    )


def measure_in_process(backend: str) -> Outcome:
    """The same through the store's methods, in this process: for the memory store, whose
    data lives in one process and which `taskfarm serve` cannot be logged into (the first
    user is made in the command's store, not the server's)."""
    storage = open_storage(backend + "://")
    storage.create_schema()
    claims_of = BlockingClaims(storage)
    worker = "scale"

    def now() -> dt.datetime:
        return dt.datetime.now(dt.UTC)

    def new_run(num_tasks: int) -> str:
        run = uuid.uuid4().hex
        storage.runs.create_run(run, num_tasks, RunPolicy())
        storage.runs.get_run(run)
        claims_of.claim(run, worker, now())
        return run

    def timed(action: Callable[[], object]) -> float:
        start = time.perf_counter()
        action()
        return time.perf_counter() - start

    me = psutil.Process()
    new_run(10)
    new_run(10)
    small = me.memory_info().rss
    loaded = new_run(NUM_TASKS)
    large = me.memory_info().rss
    start = time.perf_counter()
    claimed = 0
    while claimed < TO_CLAIM and time.perf_counter() - start < IN_PROCESS_CLAIM_SECONDS:
        claimed += len(claims_of.claim(loaded, worker, now(), min(BATCH, TO_CLAIM - claimed)))
    seconds = time.perf_counter() - start
    latencies = _alternating(
        {"loaded": loaded, "fresh": new_run(NUM_TASKS)},
        lambda run: timed(lambda: storage.runs.get_run(run)),
        lambda run: timed(lambda: claims_of.claim(run, worker, now())),
    )
    claims_of.close()
    storage.close()
    return Outcome(backend + " (in process)", small, large, claimed, seconds, latencies)


def measure_one(backend: str) -> Outcome:
    print(f"  {backend} ...", flush=True)
    try:
        if backend == "memory":
            return _printed(measure_in_process(backend))
        with database(backend) as url, servers.ours(url, workers=1) as server:
            api = Api(server.url)
            api.log_in(USER, PASSWORD)
            worker = api.new_worker()
            small, large, loaded = _memory(api, server, worker)
            claimed, seconds = _claim_many(api, loaded, worker)
            fresh = _touch(api, NUM_TASKS, worker)
            latencies = _http_latencies(api, {"loaded": loaded, "fresh": fresh}, worker)
            api.close()
    except Exception as error:
        print(f"  {backend}: failed: {error}", flush=True)
        return Outcome(backend, reason=f"failed: {error}"[:200])
    return _printed(Outcome(backend, small, large, claimed, seconds, latencies))


def _printed(outcome: Outcome) -> Outcome:
    print(
        f"  {outcome.backend}: {outcome.claimed} claimed in {outcome.claim_seconds:.1f} s; "
        "latency ratios "
        f"info {fmt(outcome.latency_ratio('run info'), 2)}, "
        f"claim {fmt(outcome.latency_ratio('claim'), 2)}; "
        f"memory ratio {fmt(outcome.memory_ratio, 3)}",
        flush=True,
    )
    return outcome


def measure_old() -> Outcome:
    """The old server on PostgreSQL, for reference: its claims and run info scan the tasks
    table (all runs' tasks: it has no index to narrow them), so its "fresh" baseline is the
    same run before the tasks were written, not another run after."""
    name = f"old 0.4.0, PostgreSQL (the {TO_CLAIM:,} tasks written by SQL)"
    print(f"  {name} ...", flush=True)
    try:
        with database("postgres") as url, servers.old(url, workers=1) as server:
            api = Api(server.url)
            api.log_in(USER, PASSWORD)
            worker = api.new_worker()
            run = api.new_run(NUM_TASKS)

            def info(run: str) -> float:
                return api.timed("GET", f"/api/runs/{run}")

            def claim(run: str) -> float:
                return api.timed("POST", f"/api/runs/{run}/task", {"worker_uuid": worker})

            latencies = _alternating({"fresh": run}, info, claim)
            start = time.perf_counter()
            servers.write_old_tasks(url, run, TO_CLAIM)
            seconds = time.perf_counter() - start
            latencies |= _alternating({"loaded": run}, info, claim)
            api.close()
    except Exception as error:
        print(f"  {name}: failed: {error}", flush=True)
        return Outcome(name, reason=_reason(error), reference=True)
    return _printed(Outcome(name, None, None, TO_CLAIM, seconds, latencies, reference=True))


def _reason(error: Exception) -> str:
    return f"failed: {error}"[:200].replace("\n", " ")


def measure(backends: Sequence[str] = BACKENDS) -> list[Outcome]:
    return [*(measure_one(backend) for backend in backends), measure_old()]


def targets(outcomes: Sequence[Outcome]) -> list[Target]:
    found: list[Target] = []
    for o in outcomes:
        if o.reference:
            continue
        for operation in ("run info", "claim"):
            name = f"scale, {o.backend}: {operation} latency, {fmt(o.claimed, 0)} claimed / fresh"
            found.append((name, o.latency_ratio(operation), LATENCY_BOUND, "max"))
        found.append(
            (
                f"scale, {o.backend}: server RSS, 10**9 tasks / 10 tasks",
                o.memory_ratio,
                MEMORY_BOUND,
                "max",
            )
        )
    return found


def report(outcomes: Sequence[Outcome]) -> str:
    latency_rows = []
    for o in outcomes:
        if o.reason:
            latency_rows.append([o.backend, o.reason, "", "", "", "", "", ""])
            continue
        reached = fmt(o.claimed, 0)
        if o.claimed < TO_CLAIM:
            reached += f" (not {TO_CLAIM:,}: stopped after {o.claim_seconds:.0f} s)"
        for operation in ("run info", "claim"):
            value = o.latency_ratio(operation)
            latency_rows.append(
                [
                    o.backend,
                    reached if operation == "run info" else "",
                    operation,
                    fmt(o.median_ms(operation, "fresh"), 3),
                    fmt(o.median_ms(operation, "loaded"), 3),
                    " / ".join(fmt(o.p90_ms(operation, run), 3) for run in ("fresh", "loaded")),
                    fmt(value, 2),
                    "reference" if o.reference else verdict(value, LATENCY_BOUND, "max"),
                ]
            )
    memory_rows = [
        [
            o.backend,
            fmt(o.rss_small / 2**20 if o.rss_small else None, 1),
            fmt(o.rss_large / 2**20 if o.rss_large else None, 1),
            fmt(o.memory_ratio, 3),
            verdict(o.memory_ratio, MEMORY_BOUND, "max"),
        ]
        for o in outcomes
        if not o.reference
    ]
    return "\n\n".join(
        [
            f"Latency: one server process, {fmt(TO_CLAIM, 0)} tasks of a run of 10**9 claimed "
            f"in batches of {BATCH} (for at most {CLAIM_SECONDS} s; {IN_PROCESS_CLAIM_SECONDS} s "
            f"in process), then {ROUNDS} alternating "
            f"rounds of {PER_ROUND} `GET /api/runs/{{uuid}}` and {PER_ROUND} single claims on "
            "that run (loaded) and on a fresh run of 10**9 tasks, one request at a time. "
            f"Target: loaded / fresh ≤ {fmt(LATENCY_BOUND)} for the medians. The memory store "
            "is measured through its methods in the benchmark's own process instead: "
            "`taskfarm serve` on `memory://` cannot be logged into, because the first user is "
            "made in the command's store, not in the server process's. The old server is "
            "measured for reference, with no target: its run's next "
            f"{TO_CLAIM:,} tasks are written into its tables by SQL, and its baseline is the "
            "same run before that, since its statements scan the whole tasks table, every "
            "run's.",
            table(
                [
                    "backend",
                    "tasks claimed",
                    "request",
                    "fresh median ms",
                    "loaded median ms",
                    "p90 ms fresh / loaded",
                    "loaded / fresh",
                    "",
                ],
                latency_rows,
            ),
            "Memory: resident set size of the server process after creating, reading and "
            "claiming one task of a run of 10 tasks, then the same with a run of 10**9 tasks. "
            f"Target: ratio ≤ {fmt(MEMORY_BOUND)}, i.e. untouched tasks cost nothing.",
            table(
                ["backend", "RSS, 10 tasks (MiB)", "RSS, 10**9 tasks (MiB)", "ratio", ""],
                memory_rows,
            ),
        ]
    )


def run() -> list[Target]:
    outcomes = measure()
    write_result("scale", "Scale: runs of 10**9 tasks", report(outcomes))
    return targets(outcomes)


if __name__ == "__main__":
    run()
