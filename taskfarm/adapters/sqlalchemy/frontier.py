"""Handing out untouched tasks past a run's frontier: the hot path of every claim.

Claims of untouched tasks all move the same run's frontier, so they take turns at its row.
On PostgreSQL one statement locks the row, moves the frontier and the counters, and inserts
the tasks: the turn lasts that statement and the commit. Locking the row first and writing
after, a statement at a time, would keep every other claim waiting for three round trips.
SQLite has one writer at a time anyway: there it is done a statement at a time.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.counters import add_to_counters, move_counters
from taskfarm.adapters.sqlalchemy.rows import task_values
from taskfarm.adapters.sqlalchemy.runs import lock_run
from taskfarm.adapters.sqlalchemy.tables import tasks
from taskfarm.adapters.sqlalchemy.task_writes import insert_tasks
from taskfarm.domain import Run, RunCounters, RunNotFound, Task


def claim_past_frontier(
    connection: sa.Connection, run: Run, worker_uuid: str, now: dt.datetime, count: int
) -> list[Task]:
    """Up to `count` tasks nobody stored, lowest first, claimed by the worker; the run's
    frontier and counters moved with them. Tasks stored out of order (a `PUT` past the
    frontier) are not untouched: the frontier skips them. Raises RunNotFound."""
    if connection.dialect.name == "postgresql":
        return _in_one_statement(connection, run, worker_uuid, now, count)
    return _a_statement_at_a_time(connection, run, worker_uuid, now, count)


#: The columns of a claimed task but its key: the same for every task one claim inserts.
_TEMPLATE = tuple(task_values(Task.untouched(0)))


def _claimed(run: Run, worker_uuid: str, now: dt.datetime, index: int) -> Task:
    return Task.untouched(index).claimed_by(worker_uuid, now, run.policy)


def _a_statement_at_a_time(
    connection: sa.Connection, run: Run, worker_uuid: str, now: dt.datetime, count: int
) -> list[Task]:
    start = frontier = lock_run(connection, run).frontier
    claimed: list[Task] = []
    while len(claimed) < count and frontier < run.num_tasks:
        end = min(frontier + count - len(claimed), run.num_tasks)
        candidates = [_claimed(run, worker_uuid, now, index) for index in range(frontier, end)]
        claimed.extend(insert_tasks(connection, run.id, candidates))
        frontier = end
    changes = [(Task.untouched(task.index), task) for task in claimed]
    move_counters(connection, run.id, changes, frontier=None if frontier == start else frontier)
    return claimed


# Lock the run's row, move its frontier up to `count` places and count that many more tasks
# computing; insert those tasks as the template parameters say; answer where the frontier
# was, where it is, and which tasks went in (not those stored out of order already).
_RESERVE_AND_INSERT = sa.text(
    """
    WITH before AS (
        SELECT id, frontier FROM runs WHERE id = :run_id FOR UPDATE
    ),
    moved AS (
        UPDATE runs
        SET frontier = LEAST(before.frontier + :count, runs.num_tasks),
            num_computing = runs.num_computing
                + LEAST(before.frontier + :count, runs.num_tasks) - before.frontier
        FROM before
        WHERE runs.id = before.id
        RETURNING before.frontier AS start, runs.frontier AS stop
    ),
    inserted AS (
        INSERT INTO tasks (run_id, idx, state, progress, worker_uuid, attempts, lease_expires)
        SELECT :run_id, idx, :state, :progress, :worker_uuid, :attempts, :lease_expires
        FROM moved, generate_series(moved.start, moved.stop - 1) AS idx
        ON CONFLICT DO NOTHING
        RETURNING idx
    )
    SELECT start, stop, ARRAY(SELECT idx FROM inserted) AS inserted FROM moved
    """
).bindparams(
    *(sa.bindparam(name, type_=tasks.c[name].type) for name in ("run_id", *_TEMPLATE)),
    sa.bindparam("count", type_=sa.BigInteger),
)


def _in_one_statement(
    connection: sa.Connection, run: Run, worker_uuid: str, now: dt.datetime, count: int
) -> list[Task]:
    template = _claimed(run, worker_uuid, now, 0)
    claimed: list[Task] = []
    while len(claimed) < count:
        parameters = {"run_id": run.id, "count": count - len(claimed), **task_values(template)}
        row = connection.execute(_RESERVE_AND_INSERT, parameters).first()
        if row is None:
            raise RunNotFound(run.uuid)  # deleted since this transaction looked it up
        start, stop, inserted = row.start, row.stop, sorted(row.inserted)
        claimed.extend(_claimed(run, worker_uuid, now, index) for index in inserted)
        skipped = (stop - start) - len(inserted)
        if skipped:
            # Stored out of order, so counted as what they are already: uncount them.
            add_to_counters(connection, run.id, RunCounters(computing=-skipped))
        if stop >= run.num_tasks:
            break
    return claimed
