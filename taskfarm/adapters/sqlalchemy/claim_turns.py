"""A few claims of a run at a time from each server process, on PostgreSQL.

Every claim of untouched tasks locks its run's row, so concurrent claims of one run queue
there inside PostgreSQL. More of them waiting makes the queue slower, not shorter: the
holder of the lock shares two cores with the waiters' backends and the server's threads,
and loses its core while it holds the lock. Letting only a few claims per run and process
go to the database, the others waiting here, raised claims per second over HTTP on a 2-core
machine from about 590 to 970 (`make bench`, 16 connections to 2 server processes).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

from cachetools import LRUCache

#: Claims of one run that one server process lets go to the database at once.
CLAIMS_AT_ONCE = 2
#: Runs whose turns are kept; a run forgotten while claimed just gets fresh turns.
MAX_RUNS = 1024


class ClaimTurns:
    """Up to `at_once` claims of each run at a time from this process."""

    def __init__(self, at_once: int = CLAIMS_AT_ONCE) -> None:
        self._at_once = at_once
        self._lock = threading.Lock()
        self._turns: LRUCache[str, threading.BoundedSemaphore] = LRUCache(MAX_RUNS)

    @contextlib.contextmanager
    def turn(self, run_uuid: str) -> Iterator[None]:
        with self._lock:
            turns = self._turns.get(run_uuid)
            if turns is None:
                turns = self._turns[run_uuid] = threading.BoundedSemaphore(self._at_once)
        with turns:
            yield
