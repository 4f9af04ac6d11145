"""Leases that ran out, handed back, and the tasks each worker holds.

Every server process sweeps, often, while claims and updates go on. A sweep takes the expired
tasks with FOR UPDATE SKIP LOCKED: a task another sweep took is that sweep's, so none is handed
back twice, and a task that an update, a restart or a deletion holds is left to it (an update
renews the lease or ends it; the next sweep sees which). So a sweep never waits for a task row.
It locks the rows of those tasks' runs after them, in order of id, to move their counters:
tasks before runs, as in tasks.py, and runs in one order among sweeps; then it records the
attempts lost, under those locks. Each batch is a
transaction of its own, so that no sweep holds many locks for long.
"""

from __future__ import annotations

import collections
import datetime as dt

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import (
    POLICY_COLUMNS,
    TASK_COLUMNS,
    policy_from_row,
    task_from_row,
)
from taskfarm.adapters.sqlalchemy.statements.attempts import record_attempts
from taskfarm.adapters.sqlalchemy.statements.counters import Change, move_counters
from taskfarm.adapters.sqlalchemy.statements.task_writes import update_tasks
from taskfarm.adapters.sqlalchemy.tables import is_computing, runs, tasks

#: The most tasks one transaction of a sweep hands back.
EXPIRY_BATCH = 500


def any_expired(connection: sa.Connection, now: dt.datetime) -> bool:
    """Whether a lease ran out by `now`: most sweeps find none, and need no write lock."""
    expired = sa.select(tasks.c.idx).where(is_computing, tasks.c.lease_expires <= now).limit(1)
    return connection.execute(expired).first() is not None


def expire_batch(connection: sa.Connection, now: dt.datetime, limit: int = EXPIRY_BATCH) -> int:
    """`Task.expired` on up to `limit` tasks whose lease ran out by `now`, the earliest
    first; how many there were. Fewer than `limit`: no other is left but those that other
    transactions hold."""
    rows = connection.execute(
        sa.select(tasks.c.run_id, *TASK_COLUMNS, *POLICY_COLUMNS)
        .join(runs, runs.c.id == tasks.c.run_id)
        .where(is_computing, tasks.c.lease_expires <= now)
        .order_by(tasks.c.lease_expires)
        .limit(limit)
        .with_for_update(of=tasks, skip_locked=True)
    ).all()
    changes: dict[int, list[Change]] = collections.defaultdict(list)
    for row in rows:
        before = task_from_row(row)
        changes[row.run_id].append((before, before.expired(policy_from_row(row))))
    for run_id, changed in changes.items():
        update_tasks(connection, run_id, changed)
    for run_id in sorted(changes):
        move_counters(connection, run_id, changes[run_id])
    for run_id, changed in changes.items():
        lost = [(before.index, before.attempt_lost()) for before, _ in changed]
        record_attempts(connection, run_id, lost)
    return len(rows)


def tasks_held(connection: sa.Connection) -> dict[str, int]:
    counted = sa.select(tasks.c.worker_uuid, sa.func.count()).where(
        is_computing, tasks.c.worker_uuid.is_not(None)
    )
    return dict(connection.execute(counted.group_by(tasks.c.worker_uuid)).all())
