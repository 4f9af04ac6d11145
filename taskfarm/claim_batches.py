"""The one batcher of claims, for every store: per run and event loop, one batch of claims at a
time on its way to the store; the claims that arrive meanwhile wait, then go together in the
next batch, up to `MAX_CLAIM_COUNT` tasks, in order of arrival.

Every claim of a run takes its turn at the run's row (SQL) or at Redis' one thread anyway, so
more claims of a run in flight at once only queue there, and cost each a round trip (and, for
a store that waits in a worker thread, a trip there) that a batch pays once.
"""

from __future__ import annotations

import asyncio
import collections
import weakref
from collections.abc import Awaitable, Callable, Sequence

import attrs

from taskfarm.domain import MAX_CLAIM_COUNT, Task, Wanted

#: Sends one batch of claims of a run to the store: the tasks of each claim, in order.
SendBatch = Callable[[str, Sequence[Wanted]], Awaitable[list[list[Task]]]]


@attrs.frozen(eq=False)
class _Waiting:
    """A claim and the request waiting for its tasks."""

    wanted: Wanted
    tasks: asyncio.Future[list[Task]]

    # A request that went away meanwhile cancelled its future; the tasks it was handed stay
    # computing until their lease runs out, as if its worker had died holding them.
    def answer(self, tasks: list[Task]) -> None:
        if not self.tasks.done():
            self.tasks.set_result(tasks)

    def fail(self, error: Exception) -> None:
        if not self.tasks.done():
            self.tasks.set_exception(error)


@attrs.define(eq=False)
class _OnLoop:
    """The claims waiting on one event loop, per run, and the task sending each run's."""

    waiting: dict[str, collections.deque[_Waiting]] = attrs.Factory(dict)
    # The event loop keeps only weak references to its tasks.
    senders: dict[str, asyncio.Task[None]] = attrs.Factory(dict)


class ClaimBatches:
    """Claims that go to the store in batches, each claim getting what a claim of its own
    would: `send` hands out the tasks of a batch as if each claim came in turn."""

    def __init__(self, send: SendBatch) -> None:
        self._send = send
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop] = (
            weakref.WeakKeyDictionary()
        )

    async def claim(self, run_uuid: str, wanted: Wanted) -> list[Task]:
        """The tasks of one claim (at most `MAX_CLAIM_COUNT`), once its batch is sent; the
        batch's error, if its sending fails."""
        loop = asyncio.get_running_loop()
        on_loop = self._loops.get(loop)
        if on_loop is None:
            on_loop = self._loops[loop] = _OnLoop()
        waiting = _Waiting(wanted, loop.create_future())
        on_loop.waiting.setdefault(run_uuid, collections.deque()).append(waiting)
        if run_uuid not in on_loop.senders:
            on_loop.senders[run_uuid] = loop.create_task(self._send_all(on_loop, run_uuid))
        return await waiting.tasks

    async def _send_all(self, on_loop: _OnLoop, run_uuid: str) -> None:
        queue = on_loop.waiting[run_uuid]
        batch: list[_Waiting] = []
        try:
            # One more turn of the event loop first: the claims of requests read in it join
            # the first batch. Under load that makes batches half as large again, for as
            # many fewer round trips, at the cost of one turn (microseconds) when idle.
            await asyncio.sleep(0)
            while queue:
                batch = _next_batch(queue)
                try:
                    each = await self._send(run_uuid, [w.wanted for w in batch])
                except Exception as error:
                    for waiting in batch:
                        waiting.fail(error)
                else:
                    for waiting, tasks in zip(batch, each, strict=True):
                        waiting.answer(tasks)
        finally:
            # Cancelled (the loop is stopping): nobody waits for an answer that cannot come.
            for waiting in [*batch, *queue]:
                waiting.tasks.cancel()
            del on_loop.waiting[run_uuid], on_loop.senders[run_uuid]


def _next_batch(queue: collections.deque[_Waiting]) -> list[_Waiting]:
    batch = [queue.popleft()]
    slots = batch[0].wanted.count
    while queue and slots + queue[0].wanted.count <= MAX_CLAIM_COUNT:
        batch.append(queue.popleft())
        slots += batch[-1].wanted.count
    return batch
