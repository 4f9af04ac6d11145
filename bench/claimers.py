"""Claims per second of a few client threads, each a worker sending single claims
(`POST .../task`, what the published client sends) as fast as answers come."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import requests


def claims_per_second(
    session_for: Callable[[], requests.Session], url: str, run: str, claimers: int, seconds: float
) -> float:
    """Claims of `run` per second by `claimers` threads for `seconds`, each on a session of
    `session_for` (logged in as it says)."""
    counted = [0] * claimers
    deadline = time.monotonic() + seconds

    def claim(slot: int) -> None:
        with session_for() as session:
            worker = f"bench-{slot}-{time.monotonic_ns()}"
            body = {"uuid": worker, "hostname": "bench", "pid": slot}
            session.post(f"{url}api/worker", json=body)
            while time.monotonic() < deadline:
                answer = session.post(f"{url}api/runs/{run}/task", json={"worker_uuid": worker})
                assert answer.status_code == 201, answer.text
                counted[slot] += 1

    threads = [threading.Thread(target=claim, args=(slot,)) for slot in range(claimers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counted) / seconds
