"""The use cases of runs, tasks and workers: check the input, ask the store, return the result."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import attrs

from taskfarm.domain import Run, Task, TaskChange, Worker, WorkerRegistration, check_num_tasks
from taskfarm.ports import Clock, RunStore, WorkerStore


@attrs.frozen
class TaskFarm:
    """What users and workers can do with runs."""

    runs: RunStore
    workers: WorkerStore
    clock: Clock

    def create_run(self, num_tasks: object) -> Run:
        return self.runs.create_run(uuid.uuid4().hex, check_num_tasks(num_tasks))

    def list_runs(self) -> Sequence[Run]:
        return self.runs.list_runs()

    def get_run(self, run_uuid: str) -> Run:
        return self.runs.get_run(run_uuid)

    def delete_run(self, run_uuid: str) -> None:
        self.runs.delete_run(run_uuid)

    def restart_run(self, run_uuid: str, *, everything: bool) -> None:
        self.runs.restart(run_uuid, everything=everything)

    def register_worker(self, registration: WorkerRegistration) -> Worker:
        return self.workers.register(registration, self.clock.now())

    def claim_task(self, run_uuid: str, worker_uuid: str) -> Task | None:
        worker = self.workers.get_worker(worker_uuid)
        return self.runs.claim(run_uuid, worker.uuid)

    def get_task(self, run_uuid: str, index: int) -> Task:
        return self.runs.get_task(run_uuid, index)

    def update_task(self, run_uuid: str, index: int, change: TaskChange) -> Task:
        return self.runs.update_task(run_uuid, index, change)
