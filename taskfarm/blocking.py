"""Coroutines awaited for callers that are not on an event loop: scripts, tests, benchmarks.

The claim is written once, for the event loop; this is how code without one calls it. Each
thread gets an event loop of its own, kept from call to call, so that the connections a store
opens on a loop (PostgreSQL's and Redis' for claims) are opened once per thread, not per call.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, TypeVar

from taskfarm.domain import Task, Wanted
from taskfarm.ports import Storage

T = TypeVar("T")


class BlockingCalls:
    """Awaits coroutines on this thread's own event loop; `close` runs `leave_loop` on each
    loop it made (to close what a store opened there), then closes them."""

    def __init__(self, leave_loop: Callable[[], Awaitable[None]]) -> None:
        self._leave_loop = leave_loop
        self._local = threading.local()
        self._lock = threading.Lock()
        self._runners: list[asyncio.Runner] = []
        # Forgotten, the loops are still closed when this goes, though not left first.
        weakref.finalize(self, _close_all, self._runners)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """The coroutine's result; call it from a thread with no running event loop."""
        runner: asyncio.Runner | None = getattr(self._local, "runner", None)
        if runner is None:
            runner = self._local.runner = asyncio.Runner()
            with self._lock:
                self._runners.append(runner)
        return runner.run(coroutine)

    def close(self) -> None:
        """Once every caller is done: a loop is not to be closed while a thread awaits on it.
        May be called on an event loop (a server's, as it shuts down): the loops are closed
        from a thread of their own, where no loop runs."""
        with self._lock:
            runners = list(self._runners)
            self._runners.clear()
        self._local = threading.local()
        if runners:
            closing = threading.Thread(target=self._close, args=(runners,), name="closing-loops")
            closing.start()
            closing.join()

    def _close(self, runners: list[asyncio.Runner]) -> None:
        for runner in runners:
            try:
                runner.run(self._leave())
            finally:
                runner.close()

    async def _leave(self) -> None:
        await self._leave_loop()


def _close_all(runners: list[asyncio.Runner]) -> None:
    for runner in runners:
        runner.close()


class BlockingClaims:
    """A store's one claim operation, for callers not on an event loop that use the store
    itself (benchmarks of stores, tests of stores); `close` before closing the store."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._calls = BlockingCalls(storage.leave_loop)

    def claim(
        self, run_uuid: str, worker_uuid: str, now: dt.datetime, count: int = 1
    ) -> list[Task]:
        """Up to `count` tasks, as a batch of one claim."""
        return self.claim_batch(run_uuid, [Wanted(worker_uuid, count)], now)[0]

    def claim_batch(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        return self._calls.run(self._storage.runs.claim_batch(run_uuid, wanted, now))

    def close(self) -> None:
        self._calls.close()
