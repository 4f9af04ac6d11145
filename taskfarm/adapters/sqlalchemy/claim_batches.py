"""The claims of one run that wait together in a server process go to the database together.

Every claim of untouched tasks locks its run's row until its commit is on disk, so claims of
one run take turns at that row however many server threads send them. More claims waiting
there makes the queue slower, not shorter: the holder of the lock shares the cores with the
waiters. Here one claim statement per run is in flight from each process; the claims that
arrive meanwhile wait in the process and then go together, in one statement that hands each
of them its tasks. Each claim still gets exactly the tasks `next_claim` gives it, in order of
arrival.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Callable, Sequence

import attrs

from taskfarm.adapters.sqlalchemy.pg_claims import Handed, Wanted
from taskfarm.domain import MAX_CLAIM_COUNT, Task

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
    """One claim statement per run at a time from this process; the claims that come while
    it runs go together in the next, sent by the first of them."""

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
