"""The counters on a run's row, moved in the same transaction as the tasks they count."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import runs
from taskfarm.domain import RunCounters, Task

_UNCHANGED = RunCounters()

#: A task before and after one change.
Change = tuple[Task, Task]


def move_counters(
    connection: sa.Connection,
    run_id: int,
    changes: Iterable[Change],
    *,
    frontier: int | None = None,
) -> None:
    delta = _UNCHANGED
    for before, after in changes:
        delta = delta.moved(before, after)
    add_to_counters(connection, run_id, delta, frontier=frontier)


def add_to_counters(
    connection: sa.Connection, run_id: int, delta: RunCounters, *, frontier: int | None = None
) -> None:
    """Adds `delta` to the run's counters and, when given, sets its frontier: one statement."""
    values: dict[str, Any] = {}
    if delta != _UNCHANGED:
        # Increments rather than values read earlier: correct whatever committed in between.
        values.update(
            num_computing=runs.c.num_computing + delta.computing,
            num_done=runs.c.num_done + delta.done,
            num_failed=runs.c.num_failed + delta.failed,
            progress=runs.c.progress + delta.progress,
        )
    if frontier is not None:
        values["frontier"] = frontier
    if values:  # else the run's row is not locked for nothing
        connection.execute(sa.update(runs).where(runs.c.id == run_id).values(values))
