"""The counters on a run's row, moved in the same transaction as the tasks they count."""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import runs
from taskfarm.domain import RunCounters, Task

_UNCHANGED = RunCounters()


def move_counters(connection: sa.Connection, run_id: int, before: Task, after: Task) -> None:
    add_to_counters(connection, run_id, _UNCHANGED.moved(before, after))


def add_to_counters(connection: sa.Connection, run_id: int, delta: RunCounters) -> None:
    # Increments rather than values read earlier: correct whatever committed in between.
    if delta == _UNCHANGED:
        return  # and the run's row is not locked for nothing
    connection.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(
            num_computing=runs.c.num_computing + delta.computing,
            num_done=runs.c.num_done + delta.done,
            progress=runs.c.progress + delta.progress,
        )
    )
