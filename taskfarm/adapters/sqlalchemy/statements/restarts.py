"""`Task.restarted` on every stored task of a run, as one bulk update.

Untouched tasks are not stored and a restart leaves them as they are: it never reads them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import task_values
from taskfarm.adapters.sqlalchemy.statements.counters import add_to_counters
from taskfarm.adapters.sqlalchemy.tables import tasks
from taskfarm.domain import FULL_PROGRESS, Run, RunCounters, Task, TaskState

if TYPE_CHECKING:
    from taskfarm.adapters.sqlalchemy.rows import AnyRow


def restart(connection: sa.Connection, run: Run, *, everything: bool) -> None:
    # The rule of `Task.restarted`: a restarted task is an untouched one, but for the progress
    # of a partial restart, which only redoes the tasks unfinished or failed.
    values = task_values(Task.untouched(0))
    if everything:
        redone: sa.ColumnElement[bool] = sa.true()
    else:
        del values["progress"]
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
