"""Progress and heartbeats on PostgreSQL: one statement, committed as it runs.

Most changes of a task are its worker reporting progress, or renewing its lease, while it
computes it: ten of the twelve requests per task of the published client's protocol. As a
transaction of the general statements (`tasks.update_task`) that is six round trips: BEGIN,
the run, the task locked, its update, the run's counters, COMMIT. This statement is one.

It is `Task.changed` for the one case it covers: a computing task held by the worker making
the change (or changed by a person, who names no worker), its progress set or kept, its lease
renewed (`RunPolicy.lease_expiry`), the run's progress moved by the difference. Nothing else
changes in that case: not the state, the worker, the attempts nor any record of an attempt.
Any other case (a change of state or with an outcome, a task not computing, held by another
worker or by nobody, a run or a task not there) finds no row, changes nothing, and goes the
general way, which says why. The task's row is locked before its run's, as in every other
transaction (see `tasks`).
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import task_from_row
from taskfarm.adapters.sqlalchemy.tables import UtcDateTime, tasks
from taskfarm.domain import MAX_TASKS, Task, TaskChange, TaskState

_PROGRESS = (
    sa.text(
        """
    WITH held AS (
        SELECT tasks.run_id, tasks.idx, tasks.progress, runs.lease_seconds
        FROM tasks JOIN runs ON runs.id = tasks.run_id
        WHERE runs.uuid = :run_uuid AND tasks.idx = :idx AND tasks.state = 'computing'
          AND (CAST(:worker_uuid AS text) IS NULL OR tasks.worker_uuid = :worker_uuid)
        FOR UPDATE OF tasks
    ),
    changed AS (
        UPDATE tasks SET
            progress = COALESCE(CAST(:progress AS bigint), held.progress),
            lease_expires = CASE WHEN held.lease_seconds IS NULL THEN NULL
                                 ELSE :now + make_interval(secs => held.lease_seconds) END,
            updated_at = now()
        FROM held
        WHERE tasks.run_id = held.run_id AND tasks.idx = held.idx
        RETURNING tasks.run_id, tasks.idx, tasks.state, tasks.progress, tasks.worker_uuid,
            tasks.attempts, tasks.lease_expires, tasks.started, held.progress AS progress_before
    ),
    counted AS (
        UPDATE runs SET progress = runs.progress + changed.progress - changed.progress_before
        FROM changed
        WHERE runs.id = changed.run_id AND changed.progress <> changed.progress_before
    )
    SELECT idx, state, progress, worker_uuid, attempts, lease_expires, started FROM changed
    """
    )
    .bindparams(sa.bindparam("now", type_=UtcDateTime))
    .columns(state=tasks.c.state.type, lease_expires=UtcDateTime, started=UtcDateTime)
)


def covers(index: int, change: TaskChange) -> bool:
    """Whether the change is progress, or a heartbeat, that leaves a computing task computing,
    of a task that may exist (a larger index is not even a BIGINT)."""
    return (
        0 <= index < MAX_TASKS
        and change.state in (None, TaskState.COMPUTING)
        and not change.reports_outcome
    )


def progress_of_held_task(
    connection: sa.Connection,
    run_uuid: str,
    index: int,
    change: TaskChange,
    now: dt.datetime,
    worker_uuid: str | None,
) -> Task | None:
    """The task changed, when the statement covers its case (`covers` said yes); else None,
    with nothing changed."""
    row = connection.execute(
        _PROGRESS,
        {
            "run_uuid": run_uuid,
            "idx": index,
            "progress": change.progress,
            "now": now,
            "worker_uuid": worker_uuid,
        },
    ).first()
    return None if row is None else task_from_row(row)
