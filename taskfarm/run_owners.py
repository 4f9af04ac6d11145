"""The owners of runs, as a process remembers them: a run's owner never changes but when its
owner is deleted, and a uuid is never used again, so a claim learns who may make it without
reading the store."""

from __future__ import annotations

import threading

from cachetools import TTLCache

from taskfarm.ports import Clock, RunStore

#: Runs whose owner a process remembers: those its workers claim from at once, and more.
REMEMBERED_RUNS = 4096
#: How long: a user deleted and made again under the same name within this time may still
#: reach the old user's runs through a process that remembers them.
REMEMBERED_SECONDS = 60


class RunOwners:
    def __init__(self, runs: RunStore, clock: Clock) -> None:
        self._runs = runs
        # Read and written from the event loop and from worker threads.
        self._lock = threading.Lock()
        self._owners: TTLCache[str, str | None] = TTLCache(
            REMEMBERED_RUNS, REMEMBERED_SECONDS, timer=lambda: clock.now().timestamp()
        )

    def remembered(self, run_uuid: str) -> tuple[str | None] | None:
        """`(owner,)` when the process remembers the run's owner, else None."""
        with self._lock:
            # Indexing asks the timer once; `in` would ask it again.
            try:
                return (self._owners[run_uuid],)
            except KeyError:
                return None

    def owner_of(self, run_uuid: str) -> str | None:
        """Reads the store unless the process remembers; raises RunNotFound."""
        remembered = self.remembered(run_uuid)
        if remembered is not None:
            return remembered[0]
        owner = self._runs.get_run(run_uuid).owner
        with self._lock:
            self._owners[run_uuid] = owner
        return owner
