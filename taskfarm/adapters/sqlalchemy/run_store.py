"""The run store: each operation one transaction over the statements of runs and tasks."""

from __future__ import annotations

from collections.abc import Sequence

from taskfarm.adapters.sqlalchemy import claims, restarts, runs
from taskfarm.adapters.sqlalchemy.transactions import Transactions
from taskfarm.domain import Run, Task, TaskChange


class SqlRunStore:
    """Runs and the tasks someone touched, in SQL; a run's counters live on its row."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def create_run(self, uuid: str, num_tasks: int) -> Run:
        return self._transactions.write(lambda c: runs.insert_run(c, uuid, num_tasks))

    def list_runs(self) -> Sequence[Run]:
        return self._transactions.read(runs.select_runs)

    def get_run(self, uuid: str) -> Run:
        return self._transactions.read(lambda c: runs.load_run(c, uuid))

    def delete_run(self, uuid: str) -> None:
        self._transactions.write(lambda c: runs.delete_run(c, uuid))

    def claim(self, run_uuid: str, worker_uuid: str) -> Task | None:
        return self._transactions.write(
            lambda c: claims.claim(c, runs.load_run(c, run_uuid), worker_uuid)
        )

    def get_task(self, run_uuid: str, index: int) -> Task:
        return self._transactions.read(
            lambda c: claims.get_task(c, runs.load_run(c, run_uuid), index)
        )

    def update_task(self, run_uuid: str, index: int, change: TaskChange) -> Task:
        return self._transactions.write(
            lambda c: claims.update_task(c, runs.load_run(c, run_uuid), index, change)
        )

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        self._transactions.write(
            lambda c: restarts.restart(c, runs.load_run(c, run_uuid), everything=everything)
        )
