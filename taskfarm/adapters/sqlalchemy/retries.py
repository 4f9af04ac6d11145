"""When to try a database operation again: one rule for the transactions of SQLAlchemy's
connections and for the claim statements awaited on psycopg's asyncio connections."""

from __future__ import annotations

import random
from collections.abc import Iterator

from taskfarm.domain import StorageError

#: How many times a transaction or statement is tried while the database reports conflicts.
MAX_ATTEMPTS = 10
FIRST_BACKOFF_SECONDS = 0.002


class Attempts:
    """The attempts of one operation. A conflict with a concurrent transaction (a deadlock, a
    serialization failure) is tried again after a backoff, up to `MAX_ATTEMPTS` times in all;
    a connection found dead (the server restarted, a proxy dropped it) is replaced once, at
    once; any other failure ends the operation.

        attempts = Attempts()
        for delay in attempts.delays():
            if delay:
                sleep(delay)
            try:
                return work()
            except DriverError as error:
                if not attempts.again(lost_connection=..., conflict=...):
                    raise translated(error) from error
    """

    def __init__(self) -> None:
        self._reconnected = False

    def delays(self) -> Iterator[float]:
        """Before each attempt, how long to wait first; raises StorageError once the last
        attempt failed too."""
        yield 0.0
        for attempt in range(1, MAX_ATTEMPTS):
            yield backoff_seconds(attempt)
        raise StorageError(
            f"the database kept reporting conflicts with concurrent requests, {MAX_ATTEMPTS} "
            "times in a row; try again"
        )

    def again(self, *, lost_connection: bool, conflict: bool) -> bool:
        """Whether the attempt that just failed is to be followed by another."""
        if lost_connection and not self._reconnected:
            self._reconnected = True
            return True
        return conflict


def backoff_seconds(attempt: int) -> float:
    """How long to wait before attempt number `attempt` (from 1): random, so that the
    transactions that collided do not collide again, and longer each time."""
    return random.uniform(0, FIRST_BACKOFF_SECONDS * 2**attempt)
