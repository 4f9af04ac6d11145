"""Domain objects from database rows and back, by name: the schema never shapes the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import runs, tasks, users, workers
from taskfarm.domain import Run, RunCounters, Task, User, Worker

if TYPE_CHECKING:
    from typing import TypeAlias

    #: A row of any columns (SQLAlchemy 2.1 types rows by the tuple of their columns).
    AnyRow: TypeAlias = sa.Row[*tuple[Any, ...]]

RUN_COLUMNS = (
    runs.c.id,
    runs.c.uuid,
    runs.c.num_tasks,
    runs.c.frontier,
    runs.c.num_computing,
    runs.c.num_done,
    runs.c.progress,
)
TASK_COLUMNS = (tasks.c.idx, tasks.c.state, tasks.c.progress, tasks.c.worker_uuid)
WORKER_COLUMNS = (
    workers.c.id,
    workers.c.uuid,
    workers.c.hostname,
    workers.c.pid,
    workers.c.started,
)
USER_COLUMNS = (users.c.id, users.c.username, users.c.password_hash, users.c.token_stamp)


def run_from_row(row: AnyRow) -> Run:
    return Run(
        id=row.id,
        uuid=row.uuid,
        num_tasks=row.num_tasks,
        frontier=row.frontier,
        counters=RunCounters(computing=row.num_computing, done=row.num_done, progress=row.progress),
    )


def task_from_row(row: AnyRow) -> Task:
    return Task(index=row.idx, state=row.state, progress=row.progress, worker=row.worker_uuid)


def task_values(task: Task) -> dict[str, Any]:
    """What an INSERT or UPDATE of `tasks` writes for this task (its run aside)."""
    return {
        "idx": task.index,
        "state": task.state,
        "progress": task.progress,
        "worker_uuid": task.worker,
    }


def worker_from_row(row: AnyRow) -> Worker:
    return Worker(id=row.id, uuid=row.uuid, hostname=row.hostname, pid=row.pid, started=row.started)


def user_from_row(row: AnyRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        token_stamp=row.token_stamp,
    )
