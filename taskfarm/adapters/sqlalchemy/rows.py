"""Domain objects from database rows and back, by name: the schema never shapes the model."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import runs, task_attempts, tasks, users, workers
from taskfarm.domain import Attempt, InputKind, Run, RunCounters, RunPolicy, Task, User, Worker

if TYPE_CHECKING:
    from typing import TypeAlias

    #: A row of any columns (SQLAlchemy 2.1 types rows by the tuple of their columns).
    AnyRow: TypeAlias = sa.Row[*tuple[Any, ...]]

POLICY_COLUMNS = (runs.c.lease_seconds, runs.c.max_attempts)
RUN_COLUMNS = (
    runs.c.id,
    runs.c.uuid,
    runs.c.num_tasks,
    *POLICY_COLUMNS,
    runs.c.frontier,
    runs.c.num_computing,
    runs.c.num_done,
    runs.c.num_failed,
    runs.c.progress,
    runs.c.name,
    runs.c.created_at,
    runs.c.inputs,
    runs.c.owner,
)
TASK_COLUMNS = (
    tasks.c.idx,
    tasks.c.state,
    tasks.c.progress,
    tasks.c.worker_uuid,
    tasks.c.attempts,
    tasks.c.lease_expires,
    tasks.c.started,
)
#: An attempt's columns, labelled apart from the task's that a listing reads beside them.
ATTEMPT_COLUMNS = (
    task_attempts.c.outcome.label("attempt_outcome"),
    task_attempts.c.worker_uuid.label("attempt_worker"),
    task_attempts.c.started.label("attempt_started"),
    task_attempts.c.ended.label("attempt_ended"),
    task_attempts.c.exit_code.label("attempt_exit_code"),
    task_attempts.c.error.label("attempt_error"),
)
WORKER_COLUMNS = (
    workers.c.id,
    workers.c.uuid,
    workers.c.hostname,
    workers.c.pid,
    workers.c.started,
    workers.c.last_seen,
    workers.c.owner,
)
USER_COLUMNS = (
    users.c.id,
    users.c.username,
    users.c.password_hash,
    users.c.token_stamp,
    users.c.admin,
)


def run_from_row(row: AnyRow) -> Run:
    return Run(
        id=row.id,
        uuid=row.uuid,
        num_tasks=row.num_tasks,
        policy=policy_from_row(row),
        frontier=row.frontier,
        counters=RunCounters(
            computing=row.num_computing,
            done=row.num_done,
            failed=row.num_failed,
            progress=row.progress,
        ),
        name=row.name,
        created=row.created_at,
        inputs=None if row.inputs is None else InputKind(row.inputs),
        owner=row.owner,
    )


def policy_from_row(row: AnyRow) -> RunPolicy:
    return RunPolicy(lease_seconds=row.lease_seconds, max_attempts=row.max_attempts)


def policy_values(policy: RunPolicy) -> dict[str, Any]:
    return {"lease_seconds": policy.lease_seconds, "max_attempts": policy.max_attempts}


def task_from_row(row: AnyRow) -> Task:
    return Task(
        index=row.idx,
        state=row.state,
        progress=row.progress,
        worker=row.worker_uuid,
        attempts=row.attempts,
        lease_expires=row.lease_expires,
        started=row.started,
    )


def attempt_from_row(row: AnyRow) -> Attempt | None:
    """The attempt of a row read with `ATTEMPT_COLUMNS` (outer-joined: None when absent)."""
    if row.attempt_outcome is None:
        return None
    return Attempt(
        outcome=row.attempt_outcome,
        worker=row.attempt_worker,
        started=row.attempt_started,
        ended=row.attempt_ended,
        exit_code=row.attempt_exit_code,
        error=row.attempt_error,
    )


def attempt_values(attempt: Attempt) -> dict[str, Any]:
    return {
        "outcome": attempt.outcome,
        "worker_uuid": attempt.worker,
        "started": attempt.started,
        "ended": attempt.ended,
        "exit_code": attempt.exit_code,
        "error": attempt.error,
    }


def task_values(task: Task) -> dict[str, Any]:
    """What an UPDATE of a stored task writes: everything but its key."""
    return {
        "state": task.state,
        "progress": task.progress,
        "worker_uuid": task.worker,
        "attempts": task.attempts,
        "lease_expires": task.lease_expires,
        "started": task.started,
    }


def task_row(run_id: int, task: Task) -> dict[str, Any]:
    """What an INSERT of the task writes."""
    return {"run_id": run_id, "idx": task.index, **task_values(task)}


def worker_from_row(row: AnyRow) -> Worker:
    return Worker(
        id=row.id,
        uuid=row.uuid,
        hostname=row.hostname,
        pid=row.pid,
        started=row.started,
        last_seen=row.last_seen,
        owner=row.owner,
    )


def user_from_row(row: AnyRow) -> User:
    return User(
        id=row.id,
        username=row.username,
        password_hash=row.password_hash,
        token_stamp=row.token_stamp,
        admin=row.admin,
    )
