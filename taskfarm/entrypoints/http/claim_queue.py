"""Claims of one run that reach a server process while another is on its way to the store
wait on the event loop, then go on together: one trip to the store for all of them (and, for
stores that wait in a worker thread, one trip there), not one each.

A trip to a worker thread costs more CPU than the rest of a claim request on the event loop,
and every claim of a run takes its turn at the run's row (or Redis' one thread) anyway.
"""

from __future__ import annotations

import asyncio
import collections

import attrs

from taskfarm.domain import MAX_CLAIM_COUNT, Task, Wanted
from taskfarm.service import TaskFarm


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


class ClaimQueue:
    """Per run, one `TaskFarm.claim_each_async` at a time from this process, for every claim
    that came while the last one ran: up to `MAX_CLAIM_COUNT` tasks each time, in order of
    arrival."""

    def __init__(self, taskfarm: TaskFarm) -> None:
        self._taskfarm = taskfarm
        self._waiting: dict[str, collections.deque[_Waiting]] = {}
        # Holds the tasks that send each run's claims: the event loop keeps only weak ones.
        self._senders: dict[str, asyncio.Task[None]] = {}

    async def claim(self, run_uuid: str, worker_uuid: str, count: object = 1) -> list[Task]:
        """Up to `count` tasks of the run for the worker, as `TaskFarm.claim_tasks` hands
        them out. What the claim says is checked before it waits: one bad claim never fails
        the others that go with it."""
        wanted = await self._taskfarm.admit_claim(run_uuid, worker_uuid, count)
        waiting = _Waiting(wanted, asyncio.get_running_loop().create_future())
        self._waiting.setdefault(run_uuid, collections.deque()).append(waiting)
        if run_uuid not in self._senders:
            self._senders[run_uuid] = asyncio.create_task(self._send(run_uuid))
        return await waiting.tasks

    async def _send(self, run_uuid: str) -> None:
        queue = self._waiting[run_uuid]
        batch: list[_Waiting] = []
        try:
            while queue:
                batch = _next_batch(queue)
                try:
                    each = await self._taskfarm.claim_each_async(
                        run_uuid, [w.wanted for w in batch]
                    )
                except Exception as error:
                    for waiting in batch:
                        waiting.fail(error)
                else:
                    for waiting, tasks in zip(batch, each, strict=True):
                        waiting.answer(tasks)
        finally:
            # Cancelled (the server is stopping): nobody waits for an answer that cannot come.
            for waiting in [*batch, *queue]:
                waiting.tasks.cancel()
            del self._waiting[run_uuid], self._senders[run_uuid]


def _next_batch(queue: collections.deque[_Waiting]) -> list[_Waiting]:
    batch = [queue.popleft()]
    slots = batch[0].wanted.count
    while queue and slots + queue[0].wanted.count <= MAX_CLAIM_COUNT:
        batch.append(queue.popleft())
        slots += batch[-1].wanted.count
    return batch
