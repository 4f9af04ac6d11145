"""`Task.restarted` on every stored task of a run, as one bulk update; `Task.retried` on
some of them.

Untouched tasks are not stored and a restart leaves them as they are: it never reads them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import TASK_COLUMNS, task_from_row, task_values
from taskfarm.adapters.sqlalchemy.statements.attempts import forget_attempts
from taskfarm.adapters.sqlalchemy.statements.counters import add_to_counters, move_counters
from taskfarm.adapters.sqlalchemy.statements.task_writes import update_tasks
from taskfarm.adapters.sqlalchemy.tables import is_failed, tasks
from taskfarm.domain import FULL_PROGRESS, Run, RunCounters, Task, TaskState

if TYPE_CHECKING:
    from taskfarm.adapters.sqlalchemy.rows import AnyRow


def restart(connection: sa.Connection, run: Run, *, everything: bool) -> None:
    # The rule of `Task.restarted`: a restarted task is an untouched one, but for the progress
    # and the start of a partial restart, which only redoes the tasks unfinished or failed.
    values = task_values(Task.untouched(0))
    if everything:
        redone: sa.ColumnElement[bool] = sa.true()
    else:
        del values["progress"], values["started"]
        redone = sa.or_(tasks.c.progress < FULL_PROGRESS, tasks.c.state == TaskState.FAILED)
    # Narrowed to the tasks it changes: the others need no lock.
    changed = sa.and_(
        redone, sa.or_(*(tasks.c[name].is_distinct_from(value) for name, value in values.items()))
    )
    restart_rows = (
        _restart_postgresql if connection.dialect.name == "postgresql" else _restart_sqlite
    )
    groups = restart_rows(connection, run, changed, values)
    add_to_counters(connection, run.id, _counted_out(groups, everything=everything))
    if everything:
        # Last, as every transaction takes the lock of an attempt's record: after its task's.
        forget_attempts(connection, run.id)


def _restart_postgresql(
    connection: sa.Connection, run: Run, changed: sa.ColumnElement[bool], values: dict[str, Any]
) -> Iterable[AnyRow]:
    # One statement, so that the tasks counted are exactly the tasks updated: a second
    # statement would also update the tasks claims inserted after the first one's snapshot.
    # Locking in index order keeps two restarts of one run from deadlocking.
    locked = (
        sa.select(tasks.c.idx, tasks.c.state, tasks.c.progress)
        .where(tasks.c.run_id == run.id, changed)
        .order_by(tasks.c.idx)
        .with_for_update()
        .cte("locked")
    )
    restarted = (
        sa.update(tasks)
        .where(tasks.c.run_id == run.id, tasks.c.idx == locked.c.idx)
        .values(values)
        .returning(locked.c.state, locked.c.progress)
        .cte("restarted")
    )
    return connection.execute(
        sa.select(restarted.c.state, sa.func.count(), sa.func.sum(restarted.c.progress)).group_by(
            restarted.c.state
        )
    ).all()


def _restart_sqlite(
    connection: sa.Connection, run: Run, changed: sa.ColumnElement[bool], values: dict[str, Any]
) -> Iterable[AnyRow]:
    # No statement can both update and aggregate in SQLite; two are exact, as nobody else
    # writes during this transaction.
    mine = sa.and_(tasks.c.run_id == run.id, changed)
    groups = connection.execute(
        sa.select(tasks.c.state, sa.func.count(), sa.func.sum(tasks.c.progress))
        .where(mine)
        .group_by(tasks.c.state)
    ).all()
    connection.execute(sa.update(tasks).where(mine).values(values))
    return groups


def _counted_out(groups: Iterable[AnyRow], *, everything: bool) -> RunCounters:
    """How the run's counters move when the tasks counted in `groups` (state, how many, sum
    of progress, as they were) become waiting again."""
    computing = done = failed = progress = 0
    for state, count, progress_sum in groups:
        computing -= count if state is TaskState.COMPUTING else 0
        done -= count if state is TaskState.DONE else 0
        failed -= count if state is TaskState.FAILED else 0
        # PostgreSQL sums bigints as numeric.
        progress -= int(progress_sum) if everything else 0
    return RunCounters(computing=computing, done=done, failed=failed, progress=progress)


#: Tasks a retry reads and writes at a time, all in one transaction.
RETRY_BATCH = 5000
_RETRYABLE = tasks.c.state.in_([TaskState.FAILED, TaskState.DONE])


def retry(connection: sa.Connection, run: Run, indices: Sequence[int] | None) -> int:
    """`Task.retried` on the run's failed tasks, or its retryable ones among `indices`;
    how many. Their rows are locked in index order, as a restart locks them."""
    retried = 0
    for rows in _retryable_batches(connection, run, indices):
        changes = [(task, task.retried()) for task in map(task_from_row, rows)]
        update_tasks(connection, run.id, changes)
        move_counters(connection, run.id, changes)
        retried += len(changes)
    return retried


def _retryable_batches(
    connection: sa.Connection, run: Run, indices: Sequence[int] | None
) -> Iterator[Sequence[AnyRow]]:
    mine = tasks.c.run_id == run.id
    if indices is not None:
        ordered = sorted(set(indices))
        for start in range(0, len(ordered), RETRY_BATCH):
            batch = ordered[start : start + RETRY_BATCH]
            yield _locked(connection, sa.and_(mine, _RETRYABLE, tasks.c.idx.in_(batch)))
        return
    after = -1
    while True:
        rows = _locked(connection, sa.and_(mine, is_failed, tasks.c.idx > after))
        yield rows
        if len(rows) < RETRY_BATCH:
            return
        after = rows[-1].idx


def _locked(connection: sa.Connection, where: sa.ColumnElement[bool]) -> Sequence[AnyRow]:
    return connection.execute(
        sa.select(*TASK_COLUMNS)
        .where(where)
        .order_by(tasks.c.idx)
        .limit(RETRY_BATCH)
        .with_for_update()
    ).all()
