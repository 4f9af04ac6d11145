"""The counters on a run's row, moved in the same transaction as the tasks they count."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import runs
from taskfarm.domain import RunCounters, Task

_UNCHANGED = RunCounters()

# Built once, with every counter an increment: building the statement for each change would
# cost more than running it. Increments rather than values read earlier: correct whatever
# committed in between.
_ADD_TO_COUNTERS = (
    sa.update(runs)
    .where(runs.c.id == sa.bindparam("run_id"))
    .values(
        num_computing=runs.c.num_computing + sa.bindparam("computing"),
        num_done=runs.c.num_done + sa.bindparam("done"),
        num_failed=runs.c.num_failed + sa.bindparam("failed"),
        progress=runs.c.progress + sa.bindparam("progress"),
    )
)
_ADD_TO_COUNTERS_AND_MOVE_FRONTIER = _ADD_TO_COUNTERS.values(frontier=sa.bindparam("frontier"))

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
    if delta == _UNCHANGED and frontier is None:
        return  # the run's row is not locked for nothing
    values: dict[str, Any] = {
        "run_id": run_id,
        "computing": delta.computing,
        "done": delta.done,
        "failed": delta.failed,
        "progress": delta.progress,
    }
    if frontier is None:
        connection.execute(_ADD_TO_COUNTERS, values)
    else:
        connection.execute(_ADD_TO_COUNTERS_AND_MOVE_FRONTIER, {**values, "frontier": frontier})
