"""Tasks written to the database, many in one statement: a claim of many costs a few round trips."""

from __future__ import annotations

import collections
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import task_row, task_values
from taskfarm.adapters.sqlalchemy.statements.counters import Change
from taskfarm.adapters.sqlalchemy.statements.upserts import insert_if_absent
from taskfarm.adapters.sqlalchemy.tables import tasks
from taskfarm.domain import Task

# Built once per dialect: claims insert tasks all the time.
_INSERT_TASKS = {
    dialect: insert_if_absent(dialect, tasks).returning(tasks.c.idx)
    for dialect in ("postgresql", "sqlite")
}


def update_tasks(connection: sa.Connection, run_id: int, changes: Iterable[Change]) -> None:
    """Writes stored tasks of the run, locked or read in this transaction as `before`, as
    `after`: only the columns that change, with one UPDATE for all the tasks changed alike
    (every task a sweep hands back, say)."""
    alike: dict[tuple[tuple[str, Any], ...], list[int]] = collections.defaultdict(list)
    for before, after in changes:
        old = task_values(before)
        changed = tuple((name, new) for name, new in task_values(after).items() if new != old[name])
        if changed:
            alike[changed].append(after.index)
    for changed, indices in alike.items():
        connection.execute(
            sa.update(tasks)
            .where(tasks.c.run_id == run_id, tasks.c.idx.in_(indices))
            .values(dict(changed))
        )


def insert_tasks(connection: sa.Connection, run_id: int, new: Sequence[Task]) -> list[Task]:
    """Stores the tasks of the run that nobody stored yet, and returns them in index order;
    leaves alone, and leaves out, those stored already."""
    if not new:
        return []
    statement = _INSERT_TASKS[connection.dialect.name]
    inserted = set(
        connection.execute(statement, [task_row(run_id, task) for task in new]).scalars()
    )
    return sorted((task for task in new if task.index in inserted), key=lambda task: task.index)
