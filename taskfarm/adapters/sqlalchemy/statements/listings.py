"""What a look at one run reads: who holds its tasks, and its first requeued or failed tasks.

Each statement reads a partial index holding only rows in the state it asks for, in index
order, and stops at its limit: it costs what it returns or counts, whatever the run's size.
"""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import TASK_COLUMNS, task_from_row
from taskfarm.adapters.sqlalchemy.tables import is_computing, is_failed, is_waiting, tasks
from taskfarm.domain import Run, Task


def holders(connection: sa.Connection, run: Run) -> dict[str, int]:
    counted = sa.select(tasks.c.worker_uuid, sa.func.count()).where(
        tasks.c.run_id == run.id, is_computing, tasks.c.worker_uuid.is_not(None)
    )
    return dict(connection.execute(counted.group_by(tasks.c.worker_uuid)).all())


def requeued_tasks(connection: sa.Connection, run: Run, limit: int) -> list[Task]:
    return _first(connection, run, is_waiting, limit)


def failed_tasks(connection: sa.Connection, run: Run, limit: int) -> list[Task]:
    return _first(connection, run, is_failed, limit)


def _first(
    connection: sa.Connection, run: Run, in_state: sa.ColumnElement[bool], limit: int
) -> list[Task]:
    rows = connection.execute(
        sa.select(*TASK_COLUMNS)
        .where(tasks.c.run_id == run.id, in_state)
        .order_by(tasks.c.idx)
        .limit(limit)
    )
    return [task_from_row(row) for row in rows]
