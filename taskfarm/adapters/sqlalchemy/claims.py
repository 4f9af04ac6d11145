"""Handing out tasks and changing them, exactly once, among many concurrent server processes.

On PostgreSQL every transaction here locks a task row before its run's row, with one
exception: the inserts of tasks nobody stored yet happen under the run's row lock. Such an
insert waits on no other lock, because every insert of a task holds its run's row: so the
waits always go from tasks to runs and never form a cycle. SQLite has one writer at a time
(`BEGIN IMMEDIATE`) and ignores the row locks.
"""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.counters import move_counters
from taskfarm.adapters.sqlalchemy.rows import TASK_COLUMNS, task_from_row, task_values
from taskfarm.adapters.sqlalchemy.runs import lock_run, run_exists
from taskfarm.adapters.sqlalchemy.tables import is_waiting, runs, tasks
from taskfarm.adapters.sqlalchemy.transactions import TryAgain
from taskfarm.adapters.sqlalchemy.upserts import insert_if_absent
from taskfarm.domain import Run, RunNotFound, Task, TaskChange


def claim(connection: sa.Connection, run: Run, worker_uuid: str) -> Task | None:
    """`next_claim`: the lowest requeued task, else the lowest untouched one past the frontier."""
    # SKIP LOCKED: a requeued task that another claim holds is that claim's; look further.
    requeued = connection.execute(
        sa.select(*TASK_COLUMNS)
        .where(tasks.c.run_id == run.id, is_waiting)
        .order_by(tasks.c.idx)
        .limit(1)
        .with_for_update(skip_locked=True)
    ).first()
    if requeued is not None:
        before = task_from_row(requeued)
        return _replace(connection, run, before, before.claimed_by(worker_uuid))
    task = _claim_past_frontier(connection, run, worker_uuid)
    if task is None and not run_exists(connection, run):
        raise RunNotFound(run.uuid)  # deleted since this transaction looked it up
    return task


def _claim_past_frontier(connection: sa.Connection, run: Run, worker_uuid: str) -> Task | None:
    # Moving the frontier locks the run's row: concurrent claims take the next index in turn.
    advance = (
        sa.update(runs)
        .where(runs.c.id == run.id, runs.c.frontier < runs.c.num_tasks)
        .values(frontier=runs.c.frontier + 1)
        .returning(runs.c.frontier - 1)
    )
    while (index := connection.execute(advance).scalar_one_or_none()) is not None:
        task = Task.untouched(index).claimed_by(worker_uuid)
        if _insert(connection, run, task):
            return task
        # Someone wrote this task out of order: it is stored, so not ours; try the next one.
    return None


def get_task(connection: sa.Connection, run: Run, index: int) -> Task:
    run.check_index(index)
    row = connection.execute(
        sa.select(*TASK_COLUMNS).where(tasks.c.run_id == run.id, tasks.c.idx == index)
    ).first()
    return Task.untouched(index) if row is None else task_from_row(row)


def update_task(connection: sa.Connection, run: Run, index: int, change: TaskChange) -> Task:
    run.check_index(index)
    row = connection.execute(
        sa.select(*TASK_COLUMNS)
        .where(tasks.c.run_id == run.id, tasks.c.idx == index)
        .with_for_update()
    ).first()
    if row is not None:
        before = task_from_row(row)
        return _replace(connection, run, before, before.changed(change))
    lock_run(connection, run)
    task = Task.untouched(index).changed(change)
    if not _insert(connection, run, task):
        # A claim stored it since we looked. Locking it now, under the run's lock, could
        # deadlock with a claim; start again, and find it stored.
        raise TryAgain
    return task


def _replace(connection: sa.Connection, run: Run, before: Task, after: Task) -> Task:
    connection.execute(
        sa.update(tasks)
        .where(tasks.c.run_id == run.id, tasks.c.idx == before.index)
        .values(task_values(after))
    )
    move_counters(connection, run.id, before, after)
    return after


def _insert(connection: sa.Connection, run: Run, task: Task) -> bool:
    """Stores a task nobody stored yet; False, and nothing done, if it is stored already."""
    values = {"run_id": run.id, **task_values(task)}
    statement = insert_if_absent(connection, tasks, values).returning(tasks.c.idx)
    if connection.execute(statement).first() is None:
        return False
    move_counters(connection, run.id, Task.untouched(task.index), task)
    return True
