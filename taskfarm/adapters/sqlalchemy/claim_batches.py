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

from taskfarm.domain import MAX_CLAIM_COUNT, Task


@attrs.frozen
class Wanted:
    """One worker's claim: how many tasks it asks for."""

    worker_uuid: str
    count: int


@attrs.frozen
class Handed:
    """What one statement handed out: the tasks of each `Wanted` in turn, and whether tasks
    nobody stored are left past the frontier (claims that got fewer may look further)."""

    tasks: list[list[Task]]
    untouched_left: bool


#: The most tasks one statement hands out: as many as one claim may ask for.
MAX_SLOTS = MAX_CLAIM_COUNT

#: Runs a statement for the claims of a run, made at a time.
Execute = Callable[[str, Sequence[Wanted], dt.datetime], Handed]


@attrs.define(eq=False)
class _Claim:
    """A claim waiting for its tasks; woken once, when it has them or when it is to lead."""

    wanted: Wanted
    now: dt.datetime
    wake: threading.Event = attrs.field(factory=threading.Event)
    leads: bool = False
    finished: bool = False
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
        me = _Claim(wanted, now)
        with self._lock:
            self._waiting[run_uuid].append(me)
            if run_uuid not in self._led:
                self._led.add(run_uuid)
                me.leads = True
        if not me.leads:
            me.wake.wait()
        if me.leads:
            try:
                while not me.finished:
                    self._send_batch(run_uuid)
            finally:
                self._hand_on(run_uuid)
        if me.error is not None:
            raise me.error
        return me.tasks

    def _send_batch(self, run_uuid: str) -> None:
        with self._lock:
            waiting = self._waiting[run_uuid]
            batch: list[_Claim] = []
            slots = 0
            while waiting and (not batch or slots + waiting[0].wanted.count <= MAX_SLOTS):
                batch.append(waiting.popleft())
                slots += batch[-1].wanted.count
        try:
            handed = self._execute(
                run_uuid, [claim.wanted for claim in batch], max(claim.now for claim in batch)
            )
        except Exception as error:
            for claim in batch:
                claim.error, claim.finished = error, True
        else:
            again = []
            for claim, tasks in zip(batch, handed.tasks, strict=True):
                claim.tasks += tasks
                missing = claim.wanted.count - len(tasks)
                if missing and handed.untouched_left:
                    # Skipped tasks stored out of order: it looks further in the next batch.
                    claim.wanted = Wanted(claim.wanted.worker_uuid, missing)
                    again.append(claim)
                else:
                    claim.finished = True
            with self._lock:
                self._waiting[run_uuid].extendleft(reversed(again))
        for claim in batch:
            if claim.finished and not claim.leads:
                claim.wake.set()

    def _hand_on(self, run_uuid: str) -> None:
        """The next claim waiting leads, or nobody does while none waits."""
        with self._lock:
            waiting = self._waiting[run_uuid]
            if not waiting:
                del self._waiting[run_uuid]
                self._led.discard(run_uuid)
                return
            following = waiting[0]
            following.leads = True
        following.wake.set()
