"""Where a claim's time goes: py-spy samples our server's processes while wrk loads the claim
route, on PostgreSQL and on Redis; small in-process timings put a price on each part.

Python CPU (`py-spy --gil`: only the thread holding the GIL), by stage of the request and,
inside the store calls, by library; also drawn as a flamegraph, `profile_{backend}.svg`. On
both backends claims wait for the database on the event loop, in no thread: what a thread
view would show of them is nothing.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import anyio.to_thread
import attrs
import sqlalchemy as sa

from bench import servers, wrk
from bench.backends import database
from bench.common import RESULTS, VENV_BIN, Target, fmt, table, write_result
from bench.http_claims import claim_target
from taskfarm.adapters.sqlalchemy import SqlStorage
from taskfarm.bootstrap import bootstrap, open_storage
from taskfarm.config import Settings
from taskfarm.domain import RunPolicy, Wanted, WorkerRegistration
from taskfarm.ports import Storage

BACKENDS = ("postgres", "redis")
RATE = 100
SECONDS = 5
SEEN = "workers.seen: the worker's last contact (at most every 5 s)"
CLAIM = "the claim: one store call per batch of claims, awaited on the event loop"
QUEUE = "claim batches: claims of a run waiting to go together"
#: Samples whose innermost Python frame is the loop's runner are in uvloop's C code: reading
#: sockets, parsing HTTP with httptools, writing answers, scheduling callbacks.
EVENT_LOOP = "event loop (uvloop and httptools, in C)"
LOOP_RUNNER = "Runner.run (asyncio/runners.py"
#: Each sample goes to the first stage whose marker is in its stack, in this order.
STAGES = (
    (SEEN, ("WorkerStore.seen (",)),
    (CLAIM, ("RunStore.claim_batch", "LoopClaims.", "PgLoopClaims.")),
    (QUEUE, ("ClaimBatches.",)),
    ("authentication: token check", ("RequireUser._authenticate (", "Accounts.recall (")),
    ("JSON: parse the body, render the answer", ("json/", "json_object (", "JSONResponse.render")),
    ("access log", ("AccessLog.", "logging/", "uvicorn/logging.py")),
    ("threadpool hop (anyio worker threads)", ("WorkerThread.run (", "to_thread", "threading.py")),
    (EVENT_LOOP, ()),
    ("HTTP and routing (uvicorn, Starlette, middleware)", ("uvicorn/", "starlette/", "taskfarm/")),
)
#: Inside the store calls: which library the innermost frame belongs to, by the path that
#: starts its file name in py-spy's frames, `function (path:line)`.
LIBRARIES = (
    ("psycopg (PostgreSQL driver)", "(psycopg/"),
    ("SQLAlchemy", "(sqlalchemy/"),
    ("redis-py", "(redis/"),
    ("taskfarm (domain, adapters)", "(taskfarm/"),
)


@attrs.frozen
class Profile:
    backend: str
    #: Samples of the GIL's holder, by stage and (inside store calls) by library.
    cpu_samples: int
    stages: dict[str, int]
    libraries: dict[str, int]
    top: list[tuple[str, int]]
    requests_per_second: float | None


def _stacks(raw: Path) -> Iterator[tuple[list[str], int]]:
    """The samples of py-spy's raw (collapsed) output: frames from the root, and a count. The
    supervisor's own samples are left out (it only watches its workers): a worker's stacks
    start with two process frames, the supervisor's and its own."""
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if sum(frame.startswith("process ") for frame in frames) >= 2:
            yield [f for f in frames if not f.startswith("process ")], int(count)


def _stage(frames: Sequence[str]) -> str:
    for name, markers in STAGES:
        if name == EVENT_LOOP:
            if LOOP_RUNNER in frames[-1]:
                return name
        elif any(marker in frame for frame in frames for marker in markers):
            return name
    return "other"


def _library(frames: Sequence[str]) -> str:
    for frame in reversed(frames):
        for name, marker in LIBRARIES:
            if marker in frame:
                return name
    return "standard library and other"


def analyse(backend: str, cpu: Path, requests_per_second: float | None) -> Profile:
    stages: collections.Counter[str] = collections.Counter()
    libraries: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    for frames, count in _stacks(cpu):
        stage = _stage(frames)
        stages[stage] += count
        leaves[frames[-1]] += count
        if stage in (SEEN, CLAIM):
            libraries[_library(frames)] += count
    return Profile(
        backend=backend,
        cpu_samples=sum(stages.values()),
        stages=dict(stages),
        libraries=dict(libraries),
        top=leaves.most_common(10),
        requests_per_second=requests_per_second,
    )


def _py_spy(pid: int, output: Path, kind: str, *options: str, rate: int = RATE) -> None:
    command = [str(VENV_BIN / "py-spy"), "record", "--pid", str(pid), "--subprocesses"]
    command += ["--rate", str(rate), "--duration", str(SECONDS), *options]
    command += ["--format", kind, "--output", str(output)]
    subprocess.run(command, check=True, capture_output=True, timeout=SECONDS + 60)


def profile_backend(backend: str, directory: Path) -> Profile:
    """Loads the server with wrk through two recordings in a row: the GIL's holder as raw
    stacks, then as a flamegraph."""
    print(f"  {backend} ...", flush=True)
    cpu = directory / f"{backend}-gil.txt"
    with database(backend) as url, servers.ours(url) as server:
        path, body, authorization = claim_target(server)
        load_seconds = 1 + 2 * (SECONDS + 2)
        env = {
            **os.environ,
            "BENCH_PATH": path,
            "BENCH_BODY": body,
            "BENCH_AUTHORIZATION": authorization,
            "BENCH_EXPECTED_STATUS": "201",
        }
        command = ["wrk", "-t", str(wrk.THREADS), "-c", str(wrk.CONNECTIONS)]
        command += ["-d", f"{load_seconds}s", "-s", str(wrk.SCRIPT), server.url]
        load = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
        try:
            time.sleep(1)
            _py_spy(server.pid, cpu, "raw", "--gil")
            # By function rather than by line, and fewer samples: a flamegraph small enough
            # to keep.
            svg = RESULTS / f"profile_{backend}.svg"
            _py_spy(server.pid, svg, "flamegraph", "--gil", "--function", rate=RATE // 3)
            output, _ = load.communicate(timeout=load_seconds + 60)
        finally:
            if load.poll() is None:
                load.kill()
                load.wait()
    summary = next((ln for ln in output.splitlines() if ln.startswith("BENCH ")), None)
    rate = None
    if summary is not None:
        data = json.loads(summary.removeprefix("BENCH "))
        rate = data["requests"] / (data["duration_us"] / 1e6)
    return analyse(backend, cpu, rate)


@attrs.frozen
class Cost:
    """One part of a claim alone: wall and CPU microseconds per call (CPU of this whole
    process, all threads), and SQL statements per call."""

    name: str
    wall_us: float
    cpu_us: float
    statements: float | None = None


class _StatementCounter:
    """Counts the SQL statements every engine in this process sends: one round trip each."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_: object) -> None:
        self.count += 1

    def __enter__(self) -> _StatementCounter:
        sa.event.listen(sa.Engine, "before_cursor_execute", self)
        return self

    def __exit__(self, *_: object) -> None:
        sa.event.remove(sa.Engine, "before_cursor_execute", self)


def _measure(name: str, action: Callable[[], object], repeat: int) -> Cost:
    action()
    with _StatementCounter() as statements:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            action()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    per_call = statements.count / repeat
    return Cost(name, 1e6 * wall / repeat, 1e6 * cpu / repeat, per_call or None)


def _threadpool_hop(repeat: int = 2000) -> Cost:
    """What `run_in_threadpool` adds to a call that does nothing, on the event loop."""

    async def hops() -> Cost:
        await anyio.to_thread.run_sync(int)
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(repeat):
            await anyio.to_thread.run_sync(int)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        name = "threadpool hop (`run_in_threadpool` of a no-op)"
        return Cost(name, 1e6 * wall / repeat, 1e6 * cpu / repeat)

    return asyncio.run(hops())


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _store_costs(backend: str, storage: Storage) -> list[Cost]:
    worker, run = uuid.uuid4().hex, uuid.uuid4().hex
    storage.workers.register(WorkerRegistration(worker, "bench", 1), _now())
    storage.runs.create_run(run, 10**9, RunPolicy())
    return [
        _measure(f"{backend}: `workers.seen`", lambda: storage.workers.seen(worker, _now()), 200),
        _awaited(
            f"{backend}: `runs.claim_batch` of one task, on the event loop",
            storage,
            run,
            worker,
            200,
        ),
        _measure(f"{backend}: `runs.get_run`", lambda: storage.runs.get_run(run), 200),
    ]


def _awaited(name: str, storage: Storage, run: str, worker: str, repeat: int) -> Cost:
    """`claim_batch` of one task, awaited `repeat` times on one event loop."""
    wanted = [Wanted(worker, 1)]

    async def claims() -> Cost:
        try:
            await storage.runs.claim_batch(run, wanted, _now())
            wall, cpu = time.perf_counter(), time.process_time()
            for _ in range(repeat):
                await storage.runs.claim_batch(run, wanted, _now())
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        finally:
            await storage.leave_loop()
        statements = 1 if isinstance(storage, SqlStorage) else None
        return Cost(name, 1e6 * wall / repeat, 1e6 * cpu / repeat, statements)

    return asyncio.run(claims())


def unit_costs() -> list[Cost]:
    """Each part of a claim, measured alone in this process."""
    costs = [_threadpool_hop()]
    services = bootstrap(Settings(database_url="memory://", secret_key="x" * 32))
    user = services.accounts.add_user("bench", "bench-password-not-secret")
    token = services.accounts.issue_token(user)
    costs.append(
        _measure(
            "token check in full (JWT decode and verify, user from the 30 s cache)",
            lambda: services.accounts.tokens.read(token, _now()),
            2000,
        )
    )
    services.accounts.authenticate_token(token)
    costs.append(
        _measure(
            "token recalled (verified in the last 30 s; on the event loop)",
            lambda: services.accounts.recall(token, ""),
            2000,
        )
    )
    body = json.dumps({"worker_uuid": uuid.uuid4().hex}).encode()
    answer = {"id": 1, "task": 1, "percentCompleted": 0.0, "status": "computing", "attempts": 1}
    costs.append(
        _measure(
            "JSON: parse a claim body and render a task",
            lambda: (json.loads(body), json.dumps(answer).encode()),
            5000,
        )
    )
    for backend in BACKENDS:
        with database(backend) as url:
            storage = open_storage(url)
            storage.create_schema()
            costs += _store_costs(backend, storage)
            storage.close()
    return costs


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.0f}%" if whole else "n/a"


def report(profiles: Sequence[Profile], costs: Sequence[Cost]) -> str:
    names = [name for name, _ in STAGES] + ["other"]
    stage_rows = [
        [name, *(_percent(p.stages.get(name, 0), p.cpu_samples) for p in profiles)]
        for name in names
    ]
    library_names = list(dict.fromkeys(n for p in profiles for n in p.libraries))
    library_rows = [
        [name, *(_percent(p.libraries.get(name, 0), sum(p.libraries.values())) for p in profiles)]
        for name in library_names
    ]
    parts = [
        f"py-spy samples both server processes ({RATE} Hz, {SECONDS} s per view) while "
        f"`wrk -c {wrk.CONNECTIONS}` posts claims. Under the profiler the servers answered "
        + ", ".join(f"{fmt(p.requests_per_second)} claims/s on {p.backend}" for p in profiles)
        + ". CPU flamegraphs: "
        + ", ".join(f"[{p.backend}](profile_{p.backend}.svg)" for p in profiles)
        + ".",
        "**Python CPU** (the thread holding the GIL), by stage of the request; each sample "
        "goes to the first stage found in its stack. When other work shares the cores, a "
        "thread can lose its core while it holds the GIL, mostly right after a system call "
        "that wakes another process (a socket write, waking a thread): those lines then "
        "weigh more than their CPU, and the CPU µs of each part, measured alone below, are "
        "the steadier guide.",
        table(
            ["stage", *(f"{p.backend} ({p.cpu_samples} samples)" for p in profiles)],
            stage_rows,
        ),
        "Python CPU inside the two store calls, by the library of the innermost frame:",
        table(["library", *(p.backend for p in profiles)], library_rows),
    ]
    for p in profiles:
        parts.append(f"Busiest functions holding the GIL (innermost frame), {p.backend}:")
        parts.append(
            table(
                ["function", "share"],
                [[f"`{leaf}`", _percent(count, p.cpu_samples)] for leaf, count in p.top],
            )
        )
    parts.append(
        "Each part alone, one call at a time in this process; each SQL statement is a round "
        "trip to the database, and each transaction adds two more: BEGIN and COMMIT. A claim "
        "writes `workers.seen` only when its process has not heard from the worker for 5 s, "
        "and checks a token in full only when its process has not verified it for 30 s:"
    )
    parts.append(
        table(
            ["part", "wall µs per call", "CPU µs per call", "SQL statements per call"],
            [[c.name, fmt(c.wall_us, 0), fmt(c.cpu_us, 0), fmt(c.statements, 0)] for c in costs],
        )
    )
    return "\n\n".join(parts)


def run() -> list[Target]:
    if not wrk.available() or not (VENV_BIN / "py-spy").exists():
        write_result("profile", "Profile of the claim path", "wrk or py-spy is not installed.")
        return []
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as directory:
        profiles = [profile_backend(b, Path(directory)) for b in BACKENDS]
    write_result("profile", "Profile of the claim path", report(profiles, unit_costs()))
    return []


if __name__ == "__main__":
    run()
