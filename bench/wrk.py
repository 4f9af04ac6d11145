"""Load from `wrk`, driven by bench/claim.lua: requests per second and latency percentiles."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import attrs

from bench.common import BENCH

SCRIPT = BENCH / "claim.lua"
#: wrk's own threads; with the server's processes they share the machine's two cores.
THREADS = 2
CONNECTIONS = 16
WARMUP_SECONDS = 1
SECONDS = 5


@attrs.frozen
class Load:
    """What `wrk` measured at one point."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    #: Answers with another status than expected, and socket errors.
    unexpected: int
    socket_errors: int

    @property
    def good_per_second(self) -> float:
        """Requests per second that got the expected answer."""
        return max(0, self.requests - self.unexpected) / self.seconds


def available() -> bool:
    return shutil.which("wrk") is not None


def claim_load(
    base_url: str,
    path: str,
    body: str,
    authorization: str,
    *,
    expected_status: int = 201,
    seconds: float = SECONDS,
    warmup_seconds: float = WARMUP_SECONDS,
    connections: int = CONNECTIONS,
) -> Load:
    """Warms up for `warmup_seconds`, then measures for `seconds` with `connections` open."""
    env = {
        **os.environ,
        "BENCH_PATH": path,
        "BENCH_BODY": body,
        "BENCH_AUTHORIZATION": authorization,
        "BENCH_EXPECTED_STATUS": str(expected_status),
    }
    if warmup_seconds > 0:
        _wrk(base_url, env, warmup_seconds, connections)
    return _wrk(base_url, env, seconds, connections)


def _wrk(base_url: str, env: dict[str, str], seconds: float, connections: int) -> Load:
    command = ["wrk", "-t", str(THREADS), "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--timeout", "10s", "-s", str(SCRIPT), base_url]
    finished = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=seconds + 60, check=True
    )
    line = next(
        (ln for ln in finished.stdout.splitlines() if ln.startswith("BENCH ")),
        None,
    )
    if line is None:
        raise RuntimeError(f"wrk printed no summary:\n{finished.stdout}\n{finished.stderr}")
    data = json.loads(line.removeprefix("BENCH "))
    return Load(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        unexpected=data["unexpected"],
        socket_errors=data["connect_errors"]
        + data["read_errors"]
        + data["write_errors"]
        + data["timeouts"],
    )
