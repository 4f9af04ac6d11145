"""What a look at one run reads: who holds its tasks, its first requeued tasks, and pages of
its tasks by state.

Each statement reads a partial index holding only rows in the state it asks for, in index
order, and stops at its limit, or a range of the primary key no longer than a page: it costs
what it returns or counts, whatever the run's size.
"""

from __future__ import annotations

import heapq

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import (
    ATTEMPT_COLUMNS,
    TASK_COLUMNS,
    attempt_from_row,
    task_from_row,
)
from taskfarm.adapters.sqlalchemy.tables import (
    is_computing,
    is_deferred,
    is_failed,
    is_queued,
    task_attempts,
    tasks,
)
from taskfarm.domain import (
    Run,
    Task,
    TaskPage,
    TaskReport,
    TaskState,
    scan_window,
    scanned_page,
    waiting_page,
)

_WITH_ATTEMPTS = tasks.outerjoin(
    task_attempts,
    sa.and_(task_attempts.c.run_id == tasks.c.run_id, task_attempts.c.idx == tasks.c.idx),
)


def holders(connection: sa.Connection, run: Run) -> dict[str, int]:
    counted = sa.select(tasks.c.worker_uuid, sa.func.count()).where(
        tasks.c.run_id == run.id, is_computing, tasks.c.worker_uuid.is_not(None)
    )
    return dict(connection.execute(counted.group_by(tasks.c.worker_uuid)).all())


def requeued_tasks(connection: sa.Connection, run: Run, limit: int) -> list[Task]:
    return [report.task for report in _waiting(connection, run, sa.true(), limit)]


def list_tasks(
    connection: sa.Connection, run: Run, state: TaskState, after: int, limit: int
) -> TaskPage:
    past = tasks.c.idx > after
    if state is TaskState.WAITING:
        requeued = _waiting(connection, run, past, limit)
        window = scan_window(run, after, limit, run.frontier)
        stored = connection.execute(
            sa.select(tasks.c.idx).where(tasks.c.run_id == run.id, _within(window))
        ).scalars()
        return waiting_page(run, after, limit, requeued, set(stored))
    if state is TaskState.DONE:
        window = scan_window(run, after, limit)
        done = sa.and_(tasks.c.state == TaskState.DONE, _within(window))
        return scanned_page(run, window, _reports(connection, run, done, limit))
    in_state = is_computing if state is TaskState.COMPUTING else is_failed
    return TaskPage.indexed(_reports(connection, run, sa.and_(in_state, past), limit), limit)


def _within(window: range) -> sa.ColumnElement[bool]:
    return sa.and_(tasks.c.idx >= window.start, tasks.c.idx < window.stop)


def _waiting(
    connection: sa.Connection, run: Run, where: sa.ColumnElement[bool], limit: int
) -> list[TaskReport]:
    """The first `limit` stored waiting tasks `where` holds, of both queues, each read from an
    index of its own, merged in index order."""
    queues = [_reports(connection, run, sa.and_(queue, where), limit) for queue in _QUEUES]
    return list(heapq.merge(*queues, key=lambda report: report.task.index))[:limit]


_QUEUES = (is_queued, is_deferred)


def _reports(
    connection: sa.Connection, run: Run, where: sa.ColumnElement[bool], limit: int
) -> list[TaskReport]:
    rows = connection.execute(
        sa.select(*TASK_COLUMNS, *ATTEMPT_COLUMNS)
        .select_from(_WITH_ATTEMPTS)
        .where(tasks.c.run_id == run.id, where)
        .order_by(tasks.c.idx)
        .limit(limit)
    )
    return [TaskReport(task_from_row(row), attempt_from_row(row)) for row in rows]
