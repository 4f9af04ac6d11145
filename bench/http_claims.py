"""HTTP claim capacity: `wrk` posting the published client's claim, against our server on each
backend, the old taskfarm 0.4.0 under gunicorn, and a bare Starlette app (the ceiling).

Every server gets a fresh database and all run at once, idle but for the one under load: the
points are measured in rounds, in one order then the reverse, so that a change in the
machine's load between two points of a ratio weighs on both. Each point claims from a new run
of 10**9 tasks (runs are lazy: it never runs out) as a newly registered worker; wrk warms up,
then measures with the same connections and threads.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, ExitStack, contextmanager

import attrs

from bench import servers, wrk
from bench.backends import database
from bench.client import Api, basic
from bench.common import (
    PASSWORD,
    RESULTS,
    USER,
    Target,
    fmt,
    ratio,
    table,
    verdict,
    write_result,
)
from bench.cpu import CpuMeter, Usage

NUM_TASKS = 10**9
OURS_WORKERS = 2
#: PostgreSQL's backends need a core of their own among two: one server process leaves it to
#: them, and gathers twice the claims per statement. Two are measured too.
OURS_POSTGRES_WORKERS = 1
#: gunicorn's sync workers serve one request each at a time; four on two cores.
OLD_POSTGRES_WORKERS = 4
#: On SQLite the old server hands tasks out twice with more than one process.
OLD_SQLITE_WORKERS = 1
BARE_WORKERS = 2
ROUNDS = 3
PRELOAD = 100_000


@attrs.frozen
class Setup:
    """One server under load: how to start it, and what it stands for."""

    key: str
    label: str
    start: Callable[[], AbstractContextManager[servers.Server]]
    #: Tasks of the old server's run written as claimed before the load: its claims slow
    #: down as its tasks table grows, ours do not.
    preload: int = 0


@attrs.frozen
class Outcome:
    """The rounds of one server; the rate is over all of them."""

    key: str
    label: str
    loads: list[wrk.Load] = attrs.field(factory=list)
    usages: list[Usage] = attrs.field(factory=list)
    reason: str = ""

    @property
    def per_second(self) -> float | None:
        seconds = sum(load.seconds for load in self.loads)
        if not seconds:
            return None
        return sum(load.good_per_second * load.seconds for load in self.loads) / seconds

    def latency_ms(self, quantile: str) -> float | None:
        """The mean over the rounds of wrk's `p50`, `p90` or `p99`."""
        values = [getattr(load, f"{quantile}_ms") for load in self.loads]
        return sum(values) / len(values) if values else None

    def cpu_ms(self, part: str) -> float | None:
        """CPU milliseconds per answered request of the "server" or its "database"."""
        requests = sum(load.requests for load in self.loads)
        spent: list[float | None] = [getattr(usage, part) for usage in self.usages]
        known = [seconds for seconds in spent if seconds is not None]
        if not requests or len(known) < len(spent):
            return None
        return 1000 * sum(known) / requests

    @property
    def errors(self) -> int:
        return sum(load.unexpected + load.socket_errors for load in self.loads)


@contextmanager
def _ours(backend: str, workers: int = OURS_WORKERS) -> Iterator[servers.Server]:
    with database(backend) as url, servers.ours(url, workers=workers) as server:
        yield server


@contextmanager
def _old(backend: str, workers: int) -> Iterator[servers.Server]:
    with database(backend) as url, servers.old(url, workers) as server:
        yield server


SETUPS = (
    Setup(
        "ours-postgres",
        f"ours, PostgreSQL, {OURS_POSTGRES_WORKERS} process",
        lambda: _ours("postgres", OURS_POSTGRES_WORKERS),
    ),
    Setup("ours-postgres-2", "ours, PostgreSQL, 2 processes", lambda: _ours("postgres")),
    Setup("ours-redis", "ours, Redis, 2 processes", lambda: _ours("redis")),
    Setup("ours-sqlite", "ours, SQLite, 2 processes", lambda: _ours("sqlite")),
    Setup(
        "old-postgres",
        f"old 0.4.0, PostgreSQL, gunicorn -w {OLD_POSTGRES_WORKERS}",
        lambda: _old("postgres", OLD_POSTGRES_WORKERS),
    ),
    Setup(
        "old-postgres-preloaded",
        f"old 0.4.0, PostgreSQL, gunicorn -w {OLD_POSTGRES_WORKERS}, {PRELOAD:,} claimed",
        lambda: _old("postgres", OLD_POSTGRES_WORKERS),
        preload=PRELOAD,
    ),
    Setup(
        "old-sqlite",
        f"old 0.4.0, SQLite, gunicorn -w {OLD_SQLITE_WORKERS}",
        lambda: _old("sqlite", OLD_SQLITE_WORKERS),
    ),
    Setup(
        "bare",
        f"bare Starlette (no work), {BARE_WORKERS} processes",
        lambda: servers.bare(BARE_WORKERS),
    ),
)


def claim_target(
    server: servers.Server, *, bare: bool = False, preload: int = 0
) -> tuple[str, str, str]:
    """(path, body, Authorization) of the claim wrk sends: a new run and worker, a token."""
    if bare:
        return "/api/runs/0/task", json.dumps({"worker_uuid": "0"}), basic("token")
    api = Api(server.url)
    token = api.log_in(USER, PASSWORD)
    worker = api.new_worker()
    run = api.new_run(NUM_TASKS)
    api.close()
    if preload and server.database_url is not None:
        servers.write_old_tasks(server.database_url, run, preload)
    return f"/api/runs/{run}/task", json.dumps({"worker_uuid": worker}), basic(token)


def measure(setups: Sequence[Setup] = SETUPS, rounds: int = ROUNDS) -> list[Outcome]:
    if not wrk.available():
        return [Outcome(s.key, s.label, reason="wrk is not installed") for s in setups]
    outcomes = {s.key: Outcome(s.key, s.label) for s in setups}
    with ExitStack() as running:
        started: dict[str, servers.Server] = {}
        # One run per server for all rounds: the old server's tables keep what it claimed.
        claims: dict[str, tuple[str, str, str]] = {}
        for setup in setups:
            try:
                started[setup.key] = running.enter_context(setup.start())
            except Exception as error:
                print(f"  {setup.label}: failed to start: {error}", flush=True)
                outcomes[setup.key] = Outcome(setup.key, setup.label, reason=_reason(error))
        for round_number in range(rounds):
            paired = _paired(setups)
            order = paired if round_number % 2 == 0 else paired[::-1]
            for setup in order:
                if setup.key not in started or outcomes[setup.key].reason:
                    continue
                server = started[setup.key]
                meter = CpuMeter(server)
                try:
                    if setup.key not in claims:
                        claims[setup.key] = claim_target(
                            server, bare=setup.key == "bare", preload=setup.preload
                        )
                    target = claims[setup.key]
                    wrk.claim_load(
                        server.url, *target, seconds=wrk.WARMUP_SECONDS, warmup_seconds=0
                    )
                    before = meter.snapshot()
                    load = wrk.claim_load(server.url, *target, warmup_seconds=0)
                    usage = meter.since(before)
                except Exception as error:
                    print(f"  {setup.label}: failed: {error}", flush=True)
                    outcomes[setup.key] = Outcome(setup.key, setup.label, reason=_reason(error))
                    continue
                outcomes[setup.key].loads.append(load)
                outcomes[setup.key].usages.append(usage)
                print(f"  {setup.label}: {load.good_per_second:,.0f} requests/s", flush=True)
    return [outcomes[s.key] for s in setups]


def _paired(setups: Sequence[Setup]) -> list[Setup]:
    """The setups in the order they are measured: the two of each ratio one right after the
    other, so that a change in the machine's speed between them weighs little on it."""
    keys = [key for _, top, bottom, *_ in (*RATIOS, *REFERENCES) for key in (top, bottom)]
    rank = {key: keys.index(key) for key in keys}
    return sorted(setups, key=lambda setup: rank.get(setup.key, len(keys)))


def _reason(error: Exception) -> str:
    return f"failed: {error}"[:200].replace("\n", " ")


#: (name, numerator, denominator, bound): each is "min", a ratio that must reach the bound.
RATIOS = (
    (
        f"ours on PostgreSQL ({OURS_POSTGRES_WORKERS} process) / old on PostgreSQL",
        "ours-postgres",
        "old-postgres",
        25.0,
    ),
    ("ours on Redis / bare Starlette", "ours-redis", "bare", 0.5),
    ("ours on SQLite (2 processes) / old on SQLite (1 process)", "ours-sqlite", "old-sqlite", 15.0),
)


def targets(outcomes: Sequence[Outcome]) -> list[Target]:
    rates = {o.key: o.per_second for o in outcomes}
    return [
        (f"HTTP claims/s: {name}", ratio(rates.get(top), rates.get(bottom)), bound, "min")
        for name, top, bottom, bound in RATIOS
    ]


#: Shown beside the targets, not counted: ours with as many processes as cores, and the old
#: server once it holds many tasks.
REFERENCES = (
    ("ours on PostgreSQL (2 processes) / old on PostgreSQL", "ours-postgres-2", "old-postgres"),
    (
        f"ours on PostgreSQL / old on PostgreSQL with {PRELOAD:,} tasks claimed",
        "ours-postgres",
        "old-postgres-preloaded",
    ),
)


def report(outcomes: Sequence[Outcome]) -> str:
    rows = []
    for o in outcomes:
        if not o.loads:
            rows.append([o.label, "n/a", "", "n/a", "n/a", "n/a", "n/a", o.reason or "n/a"])
            continue
        rounds = " / ".join(fmt(load.good_per_second) for load in o.loads)
        note = f"{o.errors} errors or unexpected answers" if o.errors else ""
        rows.append(
            [
                o.label,
                fmt(o.per_second),
                rounds,
                fmt(o.latency_ms("p50"), 2),
                fmt(o.latency_ms("p99"), 2),
                fmt(o.cpu_ms("server"), 2),
                fmt(o.cpu_ms("database"), 2),
                " ".join(filter(None, [note, o.reason])),
            ]
        )
    target_rows = [
        [name, fmt(value, 2), f"≥ {fmt(bound)}", verdict(value, bound, kind)]
        for name, value, bound, kind in targets(outcomes)
    ]
    rates = {o.key: o.per_second for o in outcomes}
    target_rows += [
        [name, fmt(ratio(rates.get(top), rates.get(bottom)), 2), "", "reference"]
        for name, top, bottom in REFERENCES
    ]
    _plot(outcomes)
    return "\n\n".join(
        [
            f"`wrk -t {wrk.THREADS} -c {wrk.CONNECTIONS}` posting `POST /api/runs/{{uuid}}/task` "
            f"with a token in HTTP Basic, {wrk.WARMUP_SECONDS} s of warm-up then "
            f"{wrk.SECONDS} s measured, on a run of 10**9 tasks, in {ROUNDS} rounds (every "
            "other one in reverse order; the two servers of each ratio one right after the "
            "other). wrk shares the two cores with the server and its "
            "database; on PostgreSQL one process of ours leaves its backends a core, and "
            "serves more claims than two (both are measured). Requests per second count "
            "only the answers with the expected status (201), over all rounds; latencies are "
            "the rounds' mean. CPU per request is summed over the server's processes, and "
            "over the database's: PostgreSQL's backends for this server's connections, or "
            "the Redis server (which other users of that Redis share); SQLite works inside "
            "the server. Unlike requests per second, CPU per request hardly depends on what "
            "else the machine runs.",
            table(
                [
                    "server",
                    "requests/s",
                    "each round",
                    "p50 ms",
                    "p99 ms",
                    "server CPU ms/request",
                    "database CPU ms/request",
                    "notes",
                ],
                rows,
            ),
            table(["ratio", "value", "target", ""], target_rows),
            "![requests per second](http_claims.png)",
        ]
    )


def _plot(outcomes: Sequence[Outcome]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    measured = [o for o in outcomes if o.per_second is not None]
    if not measured:
        return
    figure, axes = plt.subplots(figsize=(9, 4))
    labels = [o.label for o in measured]
    rates = [o.per_second or 0.0 for o in measured]
    colours = ["tab:blue" if o.key.startswith("ours") else "tab:grey" for o in measured]
    bars = axes.barh(labels, rates, color=colours)
    axes.bar_label(bars, labels=[f"{r:,.0f}" for r in rates], padding=3, fontsize="small")
    axes.invert_yaxis()
    axes.set_xscale("log")
    axes.set_xlabel(f"claims per second (HTTP, wrk, {wrk.CONNECTIONS} connections, log scale)")
    axes.set_xlim(min(rates) / 2, max(rates) * 3)
    axes.set_title("HTTP claim capacity")
    figure.tight_layout()
    figure.savefig(RESULTS / "http_claims.png", dpi=80)
    plt.close(figure)


def run() -> list[Target]:
    outcomes = measure()
    write_result("http_claims", "HTTP claim capacity", report(outcomes))
    return targets(outcomes)


if __name__ == "__main__":
    run()
