"""The claims of one run that wait together in a server process go to the database together.

Every claim of untouched tasks locks its run's row (on SQLite, the whole database) until
it commits, so claims of one run take turns there however many server threads send them.
More claims waiting there makes the queue slower, not shorter: the holder of the lock shares
the cores with the waiters. Here one claim per run is in flight from each process; the
claims that arrive meanwhile wait in the process and then go together, in one statement
(PostgreSQL) or one transaction (SQLite) that hands each of them its tasks. Each claim still
gets exactly the tasks `next_claim` gives it, in order of arrival.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Callable, Sequence

import attrs

from taskfarm.domain import MAX_CLAIM_COUNT, Task, Wanted


@attrs.frozen
class Handed:
    """What one statement handed out: the tasks of each `Wanted` in turn, and whether tasks
    nobody stored are left past the frontier (claims that got fewer may look further)."""

    tasks: list[list[Task]]
    untouched_left: bool

    def still_wanted(self, wanted: Sequence[Wanted]) -> list[Wanted | None]:
        """For each of the `wanted` this statement was for, what it still lacks, to look for
        in the next statement: the statement skipped tasks stored out of order and untouched
        ones are left past them. None for a claim that has all it can get."""
        return [
            Wanted(one.worker_uuid, one.count - len(tasks))
            if self.untouched_left and len(tasks) < one.count
            else None
            for one, tasks in zip(wanted, self.tasks, strict=True)
        ]


#: The most tasks one statement hands out: as many as one claim may ask for.
MAX_SLOTS = MAX_CLAIM_COUNT

#: Runs a statement for the claims of a run, made at a time.
Execute = Callable[[str, Sequence[Wanted], dt.datetime], Handed]


@attrs.define(eq=False)
class _Caller:
    """A thread waiting for the tasks of its claims; woken once, when all of them have their
    tasks or when it is to lead."""

    wake: threading.Event = attrs.field(factory=threading.Event)
    leads: bool = False
    unfinished: int = 0


@attrs.define(eq=False)
class _Claim:
    """One claim of a caller, waiting for its tasks."""

    caller: _Caller
    wanted: Wanted
    now: dt.datetime
    tasks: list[Task] = attrs.field(factory=list)
    error: Exception | None = None


class ClaimBatches:
    """One claim of each run at a time from this process to the database; the claims that
    come while it runs go together in the next, sent by the first of them."""

    def __init__(self, execute: Execute) -> None:
        self._execute = execute
        self._lock = threading.Lock()
        self._waiting: dict[str, collections.deque[_Claim]] = collections.defaultdict(
            collections.deque
        )
        self._led: set[str] = set()

    def claim(self, run_uuid: str, wanted: Wanted, now: dt.datetime) -> list[Task]:
        return self.claim_each(run_uuid, [wanted], now)[0]

    def claim_each(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        """The tasks of each claim, in order, as if each were claimed in turn; the first
        error of any of them is raised."""
        me = _Caller(unfinished=len(wanted))
        mine = [_Claim(me, one, now) for one in wanted]
        with self._lock:
            self._waiting[run_uuid].extend(mine)
            if run_uuid not in self._led:
                self._led.add(run_uuid)
                me.leads = True
        if not me.leads:
            me.wake.wait()
        if me.leads:
            try:
                while me.unfinished:
                    self._send_batch(run_uuid)
            finally:
                self._hand_on(run_uuid)
        for claim in mine:
            if claim.error is not None:
                raise claim.error
        return [claim.tasks for claim in mine]

    def _send_batch(self, run_uuid: str) -> None:
        with self._lock:
            waiting = self._waiting[run_uuid]
            batch: list[_Claim] = []
            slots = 0
            while waiting and (not batch or slots + waiting[0].wanted.count <= MAX_SLOTS):
                batch.append(waiting.popleft())
                slots += batch[-1].wanted.count
        finished = []
        try:
            handed = self._execute(
                run_uuid, [claim.wanted for claim in batch], max(claim.now for claim in batch)
            )
        except Exception as error:
            for claim in batch:
                claim.error = error
            finished = batch
        else:
            again = []
            still_wanted = handed.still_wanted([claim.wanted for claim in batch])
            for claim, tasks, rest in zip(batch, handed.tasks, still_wanted, strict=True):
                claim.tasks += tasks
                if rest is None:
                    finished.append(claim)
                else:
                    claim.wanted = rest
                    again.append(claim)
            with self._lock:
                self._waiting[run_uuid].extendleft(reversed(again))
        for claim in finished:
            caller = claim.caller
            caller.unfinished -= 1
            if not caller.unfinished and not caller.leads:
                caller.wake.set()

    def _hand_on(self, run_uuid: str) -> None:
        """The next claim waiting leads, or nobody does while none waits."""
        with self._lock:
            waiting = self._waiting[run_uuid]
            if not waiting:
                del self._waiting[run_uuid]
                self._led.discard(run_uuid)
                return
            following = waiting[0].caller
            following.leads = True
        following.wake.set()
