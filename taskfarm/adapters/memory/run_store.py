from __future__ import annotations

import collections
import datetime as dt
import heapq
import threading
from collections.abc import Iterator, Mapping, Sequence

import attrs

from taskfarm.domain import (
    Attempt,
    Conflict,
    Run,
    RunInputs,
    RunNotFound,
    RunPolicy,
    Sweep,
    Task,
    TaskChange,
    TaskPage,
    TaskReport,
    TaskState,
    Wanted,
    kept_attempt,
    name_taken,
    next_claim,
    scan_window,
    scanned_page,
    waiting_page,
)


@attrs.define
class _RunRecord:
    run: Run
    tasks: dict[int, Task] = attrs.Factory(dict)
    # The stored tasks that are waiting (deferred or not), computing or failed, kept apart so
    # that neither a claim nor a look at the run need scan every task.
    requeued: set[int] = attrs.Factory(set)
    deferred: set[int] = attrs.Factory(set)
    computing: set[int] = attrs.Factory(set)
    failed: set[int] = attrs.Factory(set)
    attempts: dict[int, Attempt] = attrs.Factory(dict)
    sweep: Sweep | None = None
    inputs: dict[int, str] = attrs.Factory(dict)

    def record(self, index: int, ended: Attempt | None) -> None:
        kept = kept_attempt(self.attempts.get(index), ended)
        if kept is not None:
            self.attempts[index] = kept

    def report(self, task: Task) -> TaskReport:
        return TaskReport(task, self.attempts.get(task.index))

    def put(self, task: Task) -> Task:
        before = self.tasks.get(task.index, Task.untouched(task.index))
        counters = self.run.counters.moved(before, task)
        self.run = attrs.evolve(self.run, counters=counters)
        self.tasks[task.index] = task
        for belongs, indices in (
            (task.state is TaskState.WAITING and not task.deferred, self.requeued),
            (task.deferred, self.deferred),
            (task.state is TaskState.COMPUTING, self.computing),
            (task.state is TaskState.FAILED, self.failed),
        ):
            if belongs:
                indices.add(task.index)
            else:
                indices.discard(task.index)
        return task

    def change(
        self, index: int, change: TaskChange, now: dt.datetime, worker_uuid: str | None
    ) -> Task:
        """`Task.changed`, with the record of the attempt the change ends."""
        task = self.tasks.get(index, Task.untouched(index))
        changed = self.put(task.changed(change, now, self.run.policy, worker_uuid))
        self.record(index, task.attempt_ended(change, now, worker_uuid))
        return changed

    @property
    def waiting(self) -> set[int]:
        return self.requeued | self.deferred

    def claim(self, wanted: Wanted, now: dt.datetime) -> list[Task]:
        claimed: list[Task] = []
        while len(claimed) < wanted.count:
            claim = next_claim(self.run, self.requeued, self.deferred, self.tasks)
            if claim is None:
                break
            self.run = attrs.evolve(self.run, frontier=claim.frontier)
            task = self.tasks.get(claim.index, Task.untouched(claim.index))
            claimed.append(self.put(task.claimed_by(wanted.worker_uuid, now, self.run.policy)))
        return claimed

    def first(self, indices: set[int], limit: int) -> list[Task]:
        return [self.tasks[index] for index in heapq.nsmallest(limit, indices)]


class MemoryRunStore:
    """Runs and tasks in dictionaries. Every operation holds one lock: that is its atomicity."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._records: dict[str, _RunRecord] = {}
        self._names: dict[str, str] = {}
        self._staged: dict[str, dict[int, str]] = {}
        self._last_id = 0

    def create_run(
        self,
        uuid: str,
        num_tasks: int,
        policy: RunPolicy,
        *,
        name: str | None = None,
        created: dt.datetime | None = None,
        inputs: RunInputs | None = None,
        owner: str | None = None,
    ) -> Run:
        with self._lock:
            if uuid in self._records:
                raise Conflict(f"there is already a run with uuid {uuid!r}")
            if name is not None and name in self._names:
                raise name_taken(name)
            self._last_id += 1
            run = Run(
                id=self._last_id,
                uuid=uuid,
                num_tasks=num_tasks,
                policy=policy,
                name=name,
                created=created,
                inputs=None if inputs is None else inputs.kind,
                owner=owner,
            )
            self._records[uuid] = _RunRecord(
                run,
                sweep=None if inputs is None else inputs.sweep,
                inputs=self._staged.pop(uuid, {}),
            )
            if name is not None:
                self._names[name] = uuid
            return run

    def stage_inputs(self, run_uuid: str, first: int, inputs: Sequence[str]) -> None:
        with self._lock:
            staged = self._staged.setdefault(run_uuid, {})
            staged.update(enumerate(inputs, start=first))

    def discard_inputs(self, run_uuid: str) -> None:
        with self._lock:
            self._staged.pop(run_uuid, None)

    def run_sweep(self, run_uuid: str) -> Sweep:
        with self._lock:
            sweep = self._record(run_uuid).sweep
        if sweep is None:
            raise RunNotFound(run_uuid)
        return sweep

    def task_inputs(self, run_uuid: str, indices: Sequence[int]) -> list[str | None]:
        with self._lock:
            inputs = self._record(run_uuid).inputs
            return [inputs.get(index) for index in indices]

    def named_run(self, name: str) -> str:
        with self._lock:
            try:
                return self._names[name]
            except KeyError:
                raise RunNotFound(name) from None

    def list_runs(self, owner: str | None = None) -> Sequence[Run]:
        with self._lock:
            runs = [record.run for record in self._records.values()]
        return runs if owner is None else [run for run in runs if run.owner == owner]

    def disown(self, owner: str) -> int:
        with self._lock:
            owned = [record for record in self._records.values() if record.run.owner == owner]
            for record in owned:
                record.run = attrs.evolve(record.run, owner=None)
            return len(owned)

    def get_run(self, uuid: str) -> Run:
        with self._lock:
            return self._record(uuid).run

    def delete_run(self, uuid: str) -> None:
        with self._lock:
            name = self._record(uuid).run.name
            del self._records[uuid]
            if name is not None:
                del self._names[name]

    async def claim_batch(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        # Every operation holds the lock for a moment only: waiting for it never stalls the
        # event loop for long.
        with self._lock:
            record = self._record(run_uuid)
            return [record.claim(one, now) for one in wanted]

    def get_task(self, run_uuid: str, index: int) -> Task:
        with self._lock:
            record = self._record(run_uuid)
            record.run.check_index(index)
            return record.tasks.get(index, Task.untouched(index))

    def update_task(
        self,
        run_uuid: str,
        index: int,
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> Task:
        with self._lock:
            record = self._record(run_uuid)
            record.run.check_index(index)
            return record.change(index, change, now, worker_uuid)

    def change_tasks(
        self,
        run_uuid: str,
        indices: Sequence[int],
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> list[int]:
        with self._lock:
            record = self._record(run_uuid)
            for index in indices:
                record.run.check_index(index)
            refused = []
            for index in indices:
                try:
                    record.change(index, change, now, worker_uuid)
                except Conflict:
                    refused.append(index)
            return refused

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        with self._lock:
            record = self._record(run_uuid)
            for task in list(record.tasks.values()):
                record.put(task.restarted(everything=everything))
            if everything:
                record.attempts.clear()

    def retry(self, run_uuid: str, indices: Sequence[int] | None) -> int:
        with self._lock:
            record = self._record(run_uuid)
            chosen = record.failed if indices is None else indices
            tasks = [record.tasks[i] for i in set(chosen) if i in record.tasks]
            retried = [task for task in tasks if task.retryable]
            for task in retried:
                record.put(task.retried())
            return len(retried)

    def list_tasks(self, run_uuid: str, state: TaskState, after: int, limit: int) -> TaskPage:
        with self._lock:
            record = self._record(run_uuid)
            run, tasks = record.run, record.tasks
            if state is TaskState.WAITING:
                requeued = [i for i in record.waiting if i > after]
                window = scan_window(run, after, limit, run.frontier)
                return waiting_page(
                    run,
                    after,
                    limit,
                    [record.report(task) for task in record.first(set(requeued), limit)],
                    {i for i in window if i in tasks},
                )
            if state is TaskState.DONE:
                window = scan_window(run, after, limit)
                done = [tasks[i] for i in window if i in tasks and tasks[i].state is state]
                return scanned_page(run, window, [record.report(task) for task in done])
            indexed = record.computing if state is TaskState.COMPUTING else record.failed
            page = record.first({i for i in indexed if i > after}, limit)
            return TaskPage.indexed([record.report(task) for task in page], limit)

    def expire_leases(self, now: dt.datetime) -> int:
        with self._lock:
            expired = 0
            for record in self._records.values():
                for task in [record.tasks[index] for index in record.computing]:
                    if task.lease_has_expired(now):
                        record.put(task.expired(record.run.policy))
                        record.record(task.index, task.attempt_lost())
                        expired += 1
            return expired

    def tasks_held(self) -> Mapping[str, int]:
        with self._lock:
            held: collections.Counter[str] = collections.Counter()
            for record in self._records.values():
                held.update(_workers(record))
            return held

    def holders(self, run_uuid: str) -> Mapping[str, int]:
        with self._lock:
            return collections.Counter(_workers(self._record(run_uuid)))

    def requeued_tasks(self, run_uuid: str, limit: int) -> Sequence[Task]:
        with self._lock:
            record = self._record(run_uuid)
            return record.first(record.waiting, limit)

    def _record(self, uuid: str) -> _RunRecord:
        try:
            return self._records[uuid]
        except KeyError:
            raise RunNotFound(uuid) from None


def _workers(record: _RunRecord) -> Iterator[str]:
    """The worker of each computing task of the run, once per task; tasks computing for
    nobody are left out."""
    for index in record.computing:
        worker = record.tasks[index].worker
        if worker is not None:
            yield worker
