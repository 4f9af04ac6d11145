from __future__ import annotations

import threading
from collections.abc import Sequence

import attrs

from taskfarm.domain import (
    Conflict,
    Run,
    RunCounters,
    RunNotFound,
    Task,
    TaskChange,
    TaskState,
    next_claim,
)


@attrs.define
class _RunRecord:
    run: Run
    tasks: dict[int, Task] = attrs.Factory(dict)

    def requeued(self) -> list[int]:
        return [i for i, task in self.tasks.items() if task.state is TaskState.WAITING]

    def put(self, task: Task) -> Task:
        before = self.tasks.get(task.index, Task.untouched(task.index))
        counters = self.run.counters.moved(before, task)
        self.run = attrs.evolve(self.run, counters=counters)
        self.tasks[task.index] = task
        return task


class MemoryRunStore:
    """Runs and tasks in dictionaries. Every operation holds one lock: that is its atomicity."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._records: dict[str, _RunRecord] = {}
        self._last_id = 0

    def create_run(self, uuid: str, num_tasks: int) -> Run:
        with self._lock:
            if uuid in self._records:
                raise Conflict(f"there is already a run with uuid {uuid!r}")
            self._last_id += 1
            run = Run(id=self._last_id, uuid=uuid, num_tasks=num_tasks)
            self._records[uuid] = _RunRecord(run)
            return run

    def list_runs(self) -> Sequence[Run]:
        with self._lock:
            return [record.run for record in self._records.values()]

    def get_run(self, uuid: str) -> Run:
        with self._lock:
            return self._record(uuid).run

    def delete_run(self, uuid: str) -> None:
        with self._lock:
            self._record(uuid)
            del self._records[uuid]

    def claim(self, run_uuid: str, worker_uuid: str) -> Task | None:
        with self._lock:
            record = self._record(run_uuid)
            claim = next_claim(record.run, record.requeued(), record.tasks)
            if claim is None:
                return None
            record.run = attrs.evolve(record.run, frontier=claim.frontier)
            task = record.tasks.get(claim.index, Task.untouched(claim.index))
            return record.put(task.claimed_by(worker_uuid))

    def get_task(self, run_uuid: str, index: int) -> Task:
        with self._lock:
            record = self._record(run_uuid)
            record.run.check_index(index)
            return record.tasks.get(index, Task.untouched(index))

    def update_task(self, run_uuid: str, index: int, change: TaskChange) -> Task:
        with self._lock:
            record = self._record(run_uuid)
            record.run.check_index(index)
            task = record.tasks.get(index, Task.untouched(index))
            return record.put(task.changed(change))

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        with self._lock:
            record = self._record(run_uuid)
            record.tasks = {
                i: task.restarted(everything=everything) for i, task in record.tasks.items()
            }
            counters = RunCounters.of(record.tasks.values())
            record.run = attrs.evolve(record.run, counters=counters)

    def _record(self, uuid: str) -> _RunRecord:
        try:
            return self._records[uuid]
        except KeyError:
            raise RunNotFound(uuid) from None
