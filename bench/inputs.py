"""Runs over inputs: uploading a million lines, a sweep of 10**9 combinations, and claims of
runs with inputs against claims of a plain run.

Per backend, one server process (`--workers 1`, so that its memory is one process's):

- upload: a file of 1,000,000 lines (about 100 MB) streamed to `POST /api/run/upload`; the
  time it takes, and the server's resident memory sampled every 50 ms, against the same
  before the upload;
- sweep: `POST /api/run` of a 10**9-combination sweep and `GET /api/runs/{uuid}` of it,
  against the same for a plain run of 10 tasks, by their medians over alternating rounds;
- claims: claims per second of single claims (`POST .../task`, what the published client
  sends) by 4 client threads, on a run of lines, a sweep and a plain run, alternating rounds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import attrs
import requests

from bench import servers
from bench.backends import database
from bench.claimers import claims_per_second
from bench.common import PASSWORD, USER, Target, fmt, median, ratio, table, write_result

T = TypeVar("T")

BACKENDS = ("sqlite", "postgres", "redis")
LINES = 1_000_000
LINE = "data/sample-{:07d}/reads.fastq.gz --quality 30 --trim adapters.fa --out results/{:07d}\n"
SWEEP = {f"p{i}": list(range(10)) for i in range(9)}
ROUNDS = 5
CLAIM_SECONDS = 5.0
CLAIMERS = 4
#: The server's memory may grow by this much while a million lines go through it: what one
#: worker thread's allocator arena takes (64 MB), twice over, whatever the file's size.
MEMORY_BOUND_MB = 128


@attrs.frozen
class Outcome:
    backend: str
    upload_seconds: float
    memory_before_mb: float
    memory_peak_mb: float
    sweep_create_ratio: float | None
    sweep_info_ratio: float | None
    claims_plain: float
    claims_lines: float
    claims_sweep: float


def _lines() -> Iterator[bytes]:
    chunk: list[str] = []
    for i in range(LINES):
        chunk.append(LINE.format(i, i))
        if len(chunk) == 1000:
            yield "".join(chunk).encode()
            chunk = []


def _peak_rss(server: servers.Server, stop: threading.Event, peak: list[int]) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], server.rss_bytes())
        time.sleep(0.05)


def _timed(call: Callable[..., T], *arguments: Any) -> tuple[float, T]:
    start = time.perf_counter()
    result = call(*arguments)
    return time.perf_counter() - start, result


def _create(api: requests.Session, base: str, body: dict[str, Any]) -> str:
    created = api.post(f"{base}api/run", json=body)
    assert created.status_code == 201, created.text
    return str(created.json()["uuid"])


def measure_backend(backend: str) -> Outcome:
    with database(backend) as url, servers.ours(url, workers=1) as server:
        base = server.url

        def session() -> requests.Session:
            made = requests.Session()
            made.auth = (USER, PASSWORD)
            return made

        api = session()
        before = server.rss_bytes()
        stop, peak = threading.Event(), [before]
        sampler = threading.Thread(target=_peak_rss, args=(server, stop, peak))
        sampler.start()
        start = time.perf_counter()
        uploaded = api.post(
            f"{base}api/run/upload", data=_lines(), headers={"Content-Type": "text/plain"}
        )
        upload_seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        assert uploaded.status_code == 201, uploaded.text
        lines_run = uploaded.json()["uuid"]
        assert uploaded.json()["numTasks"] == LINES

        sweep_create, plain_create, sweep_info, plain_info = [], [], [], []
        for _ in range(ROUNDS):
            seconds, sweep_run = _timed(_create, api, base, {"sweep": SWEEP})
            sweep_create.append(seconds)
            seconds, small_run = _timed(_create, api, base, {"numTasks": 10})
            plain_create.append(seconds)
            sweep_info.append(_timed(api.get, f"{base}api/runs/{sweep_run}")[0])
            plain_info.append(_timed(api.get, f"{base}api/runs/{small_run}")[0])
        plain_run = api.post(f"{base}api/run", json={"numTasks": 10**9}).json()["uuid"]

        rates: dict[str, list[float]] = {"plain": [], "lines": [], "sweep": []}
        # A round first whose rates are not kept: the database settles after the upload's
        # million rows (PostgreSQL's autovacuum reads them all) before claims are compared.
        for _ in range(ROUNDS + 1):
            for kind, run in (("plain", plain_run), ("lines", lines_run), ("sweep", sweep_run)):
                rates[kind].append(claims_per_second(session, base, run, CLAIMERS, CLAIM_SECONDS))
        rates = {kind: measured[1:] for kind, measured in rates.items()}
        return Outcome(
            backend,
            upload_seconds,
            before / 2**20,
            peak[0] / 2**20,
            ratio(median(sweep_create), median(plain_create)),
            ratio(median(sweep_info), median(plain_info)),
            median(rates["plain"]),
            median(rates["lines"]),
            median(rates["sweep"]),
        )


def report(outcomes: list[Outcome]) -> str:
    rows = [
        [
            o.backend,
            fmt(o.upload_seconds),
            fmt(LINES / o.upload_seconds, 0),
            fmt(o.memory_before_mb),
            fmt(o.memory_peak_mb),
            fmt(o.memory_peak_mb - o.memory_before_mb),
            fmt(o.sweep_create_ratio, 2),
            fmt(o.sweep_info_ratio, 2),
            fmt(o.claims_plain, 0),
            fmt(ratio(o.claims_lines, o.claims_plain), 2),
            fmt(ratio(o.claims_sweep, o.claims_plain), 2),
        ]
        for o in outcomes
    ]
    headers = [
        "backend",
        "upload s",
        "lines/s",
        "RSS before MB",
        "RSS peak MB",
        "growth MB",
        "sweep create ÷ plain",
        "sweep info ÷ plain",
        "plain claims/s",
        "lines ÷ plain",
        "sweep ÷ plain",
    ]
    return (
        __doc__
        + f"\nThe file: {LINES:,} lines of {len(LINE.format(0, 0))} bytes. Medians of {ROUNDS} "
        "rounds.\n\n" + table(headers, rows) + "\n"
    )


def targets(outcomes: list[Outcome]) -> list[Target]:
    found: list[Target] = []
    for o in outcomes:
        found += [
            (
                f"inputs/{o.backend}: server memory growth over a 100 MB upload, MB",
                o.memory_peak_mb - o.memory_before_mb,
                MEMORY_BOUND_MB,
                "max",
            ),
            (
                f"inputs/{o.backend}: 10**9-combination sweep, create ÷ plain run",
                o.sweep_create_ratio,
                2.0,
                "max",
            ),
            (
                f"inputs/{o.backend}: 10**9-combination sweep, info ÷ plain run",
                o.sweep_info_ratio,
                2.0,
                "max",
            ),
            (
                f"inputs/{o.backend}: claims/s of a run of lines ÷ plain",
                ratio(o.claims_lines, o.claims_plain),
                0.9,
                "min",
            ),
            (
                f"inputs/{o.backend}: claims/s of a sweep ÷ plain",
                ratio(o.claims_sweep, o.claims_plain),
                0.9,
                "min",
            ),
        ]
    return found


def run() -> list[Target]:
    outcomes = [measure_backend(backend) for backend in BACKENDS]
    write_result("inputs", "Runs over inputs", report(outcomes))
    return targets(outcomes)


if __name__ == "__main__":
    print(report([measure_backend(backend) for backend in BACKENDS]))
