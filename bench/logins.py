"""Claims while someone guesses passwords: does a flood of wrong logins starve the workers?

One `taskfarm serve` (SQLite, 2 processes, the real Argon2 hasher). Four client threads claim
tasks with a token (`POST .../task`, what the published client sends) for a few seconds, in
three conditions, alternating rounds:

- quiet: nothing else arrives;
- throttled flood: 200 wrong-password requests per second from one address, for one
  username: past the limits (`PER_USERNAME`, `PER_ADDRESS` failures in `LOGIN_WINDOW`) each is
  answered 429 without running the KDF;
- unthrottled flood: 200 per second, each for a new username from a new address (as
  `X-Forwarded-For`, which the server trusts from 127.0.0.1 by default): none is ever
  throttled, so each would run the KDF. Password checks take turns (`PASSWORD_CHECKS_AT_ONCE`
  per process), and those waiting their turn wait on the event loop, not in the threadpool
  that claims need.

The flood is sent open-loop at a steady rate, with at most `FLOOD_IN_FLIGHT` requests
waiting at once: a request that would go past that is counted as not sent.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import attrs
import requests

from bench import servers
from bench.backends import database
from bench.claimers import claims_per_second
from bench.common import PASSWORD, USER, Target, fmt, median, ratio, table, write_result

FLOOD_PER_SECOND = 200
FLOOD_IN_FLIGHT = 64
ROUNDS = 3
CLAIM_SECONDS = 5.0
CLAIMERS = 4
CONDITIONS = ("quiet", "throttled flood", "unthrottled flood")


@attrs.frozen
class Flood:
    sent: int
    not_sent: int
    statuses: Counter[int]


def _claims_per_second(url: str, token: str, run: str) -> float:
    def session() -> requests.Session:
        made = requests.Session()
        made.auth = (token, "")
        return made

    return claims_per_second(session, url, run, CLAIMERS, CLAIM_SECONDS)


def _flood(
    url: str, guess: Callable[[int], tuple[str, dict[str, str]]], stop: threading.Event
) -> Flood:
    """Wrong logins at FLOOD_PER_SECOND until `stop`; `guess(n)` is the username and headers
    of the n-th."""
    statuses: Counter[int] = Counter()
    in_flight = threading.BoundedSemaphore(FLOOD_IN_FLIGHT)
    local = threading.local()
    sent = not_sent = 0

    def send(n: int) -> None:
        try:
            if not hasattr(local, "session"):
                local.session = requests.Session()
            username, headers = guess(n)
            answer = local.session.get(
                f"{url}api/runs", auth=(username, "wrong"), headers=headers, timeout=60
            )
            statuses[answer.status_code] += 1
        except requests.RequestException:
            statuses[0] += 1
        finally:
            in_flight.release()

    with ThreadPoolExecutor(FLOOD_IN_FLIGHT) as pool:
        start = time.monotonic()
        for n in itertools.count():
            if stop.is_set():
                break
            time.sleep(max(0.0, start + n / FLOOD_PER_SECOND - time.monotonic()))
            if in_flight.acquire(blocking=False):
                sent += 1
                pool.submit(send, n)
            else:
                not_sent += 1
    return Flood(sent, not_sent, statuses)


def _one_address(n: int) -> tuple[str, dict[str, str]]:
    return "guessed", {}


def _new_address(n: int) -> tuple[str, dict[str, str]]:
    return f"guess-{n}", {"X-Forwarded-For": f"10.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"}


def measure() -> tuple[dict[str, list[float]], dict[str, Flood]]:
    rates: dict[str, list[float]] = {condition: [] for condition in CONDITIONS}
    floods: dict[str, Flood] = {}
    with database("sqlite") as url, servers.ours(url, workers=2) as server:
        base = server.url
        token = requests.get(f"{base}api/token", auth=(USER, PASSWORD)).json()["token"]
        run = requests.post(f"{base}api/run", json={"numTasks": 10**9}, auth=(token, "")).json()[
            "uuid"
        ]
        for _ in range(ROUNDS):
            rates["quiet"].append(_claims_per_second(base, token, run))
            for condition, guess in (
                ("throttled flood", _one_address),
                ("unthrottled flood", _new_address),
            ):
                stop = threading.Event()
                with ThreadPoolExecutor(1) as flooder:
                    flooding = flooder.submit(_flood, base, guess, stop)
                    rates[condition].append(_claims_per_second(base, token, run))
                    stop.set()
                    flood = flooding.result()
                floods[condition] = _merged(floods.get(condition), flood)
    return rates, floods


def _merged(before: Flood | None, flood: Flood) -> Flood:
    if before is None:
        return flood
    return Flood(
        before.sent + flood.sent, before.not_sent + flood.not_sent, before.statuses + flood.statuses
    )


def report(rates: dict[str, list[float]], floods: dict[str, Flood]) -> str:
    quiet = median(rates["quiet"])
    rows = []
    for condition in CONDITIONS:
        flood = floods.get(condition)
        answered = (
            ""
            if flood is None
            else ", ".join(
                f"{status or 'no answer'}: {count}"
                for status, count in sorted(flood.statuses.items())
            )
        )
        rows.append(
            [
                condition,
                fmt(median(rates[condition]), 0),
                fmt(min(rates[condition]), 0),
                fmt(ratio(median(rates[condition]), quiet), 2),
                "-" if flood is None else f"{flood.sent:,}",
                "-" if flood is None else f"{flood.not_sent:,}",
                answered or "-",
            ]
        )
    headers = [
        "condition",
        "claims/s (median)",
        "claims/s (min)",
        "÷ quiet",
        "wrong logins sent",
        "not sent (64 waiting)",
        "answers",
    ]
    return (
        __doc__ + f"\n{ROUNDS} rounds of {CLAIM_SECONDS:.0f} s per condition; the flood at "
        f"{FLOOD_PER_SECOND}/s.\n\n" + table(headers, rows) + "\n"
    )


def targets(rates: dict[str, list[float]]) -> list[Target]:
    quiet = median(rates["quiet"])
    return [
        (
            "logins: claims/s under 200 throttled wrong logins/s ÷ quiet",
            ratio(median(rates["throttled flood"]), quiet),
            0.8,
            "min",
        ),
        (
            "logins: claims/s under 200 unthrottled wrong logins/s ÷ quiet",
            ratio(median(rates["unthrottled flood"]), quiet),
            0.5,
            "min",
        ),
    ]


def run() -> list[Target]:
    rates, floods = measure()
    write_result("logins", "Claims under a flood of wrong passwords", report(rates, floods))
    return targets(rates)


if __name__ == "__main__":
    measured = measure()
    print(report(*measured))
