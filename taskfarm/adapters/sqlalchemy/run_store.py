"""The run store: each operation one transaction over the statements of runs and tasks."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence

import anyio.to_thread

from taskfarm.adapters.sqlalchemy.pg_loop_claims import PgLoopClaims
from taskfarm.adapters.sqlalchemy.statements import inputs as run_inputs
from taskfarm.adapters.sqlalchemy.statements import (
    leases,
    listings,
    pg_updates,
    restarts,
    runs,
    tasks,
)
from taskfarm.adapters.sqlalchemy.transactions import Transactions
from taskfarm.domain import (
    Run,
    RunInputs,
    RunPolicy,
    Sweep,
    Task,
    TaskChange,
    TaskPage,
    TaskState,
    Wanted,
)


class SqlRunStore:
    """Runs and the tasks someone touched, in SQL; a run's counters live on its row."""

    def __init__(self, transactions: Transactions, loop_claims: PgLoopClaims | None = None) -> None:
        self._transactions = transactions
        # PostgreSQL's claims are awaited on the event loop; without them (SQLite), a batch
        # of claims is one transaction in a worker thread.
        self._loop_claims = loop_claims

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
        return self._transactions.write(
            lambda c: runs.insert_run(c, uuid, num_tasks, policy, name, created, inputs, owner)
        )

    def stage_inputs(self, run_uuid: str, first: int, inputs: Sequence[str]) -> None:
        self._transactions.write(lambda c: run_inputs.stage_inputs(c, run_uuid, first, inputs))

    def discard_inputs(self, run_uuid: str) -> None:
        self._transactions.write(lambda c: run_inputs.delete_inputs(c, run_uuid))

    def run_sweep(self, run_uuid: str) -> Sweep:
        return self._transactions.read(lambda c: run_inputs.run_sweep(c, run_uuid))

    def task_inputs(self, run_uuid: str, indices: Sequence[int]) -> list[str | None]:
        return self._transactions.read(lambda c: run_inputs.read_inputs(c, run_uuid, indices))

    def named_run(self, name: str) -> str:
        return self._transactions.read(lambda c: runs.named_run(c, name))

    def list_runs(self, owner: str | None = None) -> Sequence[Run]:
        return self._transactions.read(lambda c: runs.select_runs(c, owner))

    def disown(self, owner: str) -> int:
        return self._transactions.write(lambda c: runs.disown(c, owner))

    def get_run(self, uuid: str) -> Run:
        return self._transactions.read(lambda c: runs.load_run(c, uuid))

    def delete_run(self, uuid: str) -> None:
        self._transactions.write(lambda c: runs.delete_run(c, uuid))

    async def claim_batch(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        if self._loop_claims is not None:
            return await self._loop_claims.claim_each(run_uuid, wanted, now)
        return await anyio.to_thread.run_sync(
            self._transactions.write, lambda c: tasks.claim_together(c, run_uuid, wanted, now)
        )

    def get_task(self, run_uuid: str, index: int) -> Task:
        return self._transactions.read(
            lambda c: tasks.get_task(c, runs.load_run(c, run_uuid), index)
        )

    def update_task(
        self,
        run_uuid: str,
        index: int,
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> Task:
        if self._transactions.dialect == "postgresql" and pg_updates.covers(index, change):
            changed = self._transactions.statement(
                lambda c: pg_updates.progress_of_held_task(
                    c, run_uuid, index, change, now, worker_uuid
                )
            )
            if changed is not None:
                return changed
        return self._transactions.write(
            lambda c: tasks.update_task(
                c, runs.load_run(c, run_uuid), index, change, now, worker_uuid
            )
        )

    def change_tasks(
        self,
        run_uuid: str,
        indices: Sequence[int],
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> list[int]:
        _, refused = self._transactions.write(
            lambda c: tasks.change_tasks(
                c, runs.load_run(c, run_uuid), indices, change, now, worker_uuid
            )
        )
        return list(refused)

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        self._transactions.write(
            lambda c: restarts.restart(c, runs.load_run(c, run_uuid), everything=everything)
        )

    def retry(self, run_uuid: str, indices: Sequence[int] | None) -> int:
        return self._transactions.write(
            lambda c: restarts.retry(c, runs.load_run(c, run_uuid), indices)
        )

    def list_tasks(self, run_uuid: str, state: TaskState, after: int, limit: int) -> TaskPage:
        return self._transactions.read(
            lambda c: listings.list_tasks(c, runs.load_run(c, run_uuid), state, after, limit)
        )

    def expire_leases(self, now: dt.datetime) -> int:
        # Every server process sweeps every second or so: on SQLite, a write transaction each
        # time would make claims wait for nothing.
        if not self._transactions.read(lambda c: leases.any_expired(c, now)):
            return 0
        # A transaction per batch: each task is handed back atomically with its run's counters,
        # and a sweep of many holds few locks at a time.
        expired = 0
        while True:
            batch = self._transactions.write(lambda c: leases.expire_batch(c, now))
            expired += batch
            if batch < leases.EXPIRY_BATCH:
                return expired

    def tasks_held(self) -> Mapping[str, int]:
        return self._transactions.read(leases.tasks_held)

    def holders(self, run_uuid: str) -> Mapping[str, int]:
        return self._transactions.read(lambda c: listings.holders(c, runs.load_run(c, run_uuid)))

    def requeued_tasks(self, run_uuid: str, limit: int) -> Sequence[Task]:
        return self._transactions.read(
            lambda c: listings.requeued_tasks(c, runs.load_run(c, run_uuid), limit)
        )
