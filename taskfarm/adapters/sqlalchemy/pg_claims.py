"""Claims on PostgreSQL: one statement, committed as it runs.

Every claim of an untouched task moves the same run's frontier, so claims queue at the run's
row. In a transaction of several statements the row stays locked until the server process
has read the last answer, taken its turn at the GIL among its request threads, and sent
COMMIT: milliseconds, under load, during which every other claim of the run waits. This one
statement takes the requeued tasks (SKIP LOCKED: those another claim holds are that claim's),
locks the run's row, inserts the untouched tasks past the frontier, and moves the frontier and
the counters; in autocommit, the row is locked for the time PostgreSQL takes to run it.

Task rows are locked before the run's row, as in every other transaction (see `claims`); and
the requeued ones with SKIP LOCKED, which never waits. The waiting state is written as a
literal: a plan made for any value of a parameter could not use the partial index of waiting
tasks, and would read every task of the run.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import UtcDateTime, tasks
from taskfarm.domain import RunNotFound, Task, TaskState

_CLAIM = (
    sa.text(
        """
    WITH run AS (
        SELECT id, num_tasks, lease_seconds FROM runs WHERE uuid = :run_uuid
    ),
    lease AS (
        SELECT CASE WHEN lease_seconds IS NULL THEN NULL
                    ELSE :now + make_interval(secs => lease_seconds) END AS expires
        FROM run
    ),
    requeued AS (
        SELECT tasks.idx FROM tasks JOIN run ON tasks.run_id = run.id
        WHERE tasks.state = 'waiting'
        ORDER BY tasks.idx
        LIMIT :count
        FOR UPDATE OF tasks SKIP LOCKED
    ),
    reclaimed AS (
        UPDATE tasks
        SET state = :computing, worker_uuid = :worker_uuid, attempts = tasks.attempts + 1,
            lease_expires = (SELECT expires FROM lease), updated_at = now()
        FROM run, requeued
        WHERE tasks.run_id = run.id AND tasks.idx = requeued.idx
        RETURNING tasks.idx, tasks.progress, tasks.attempts
    ),
    before AS (
        SELECT runs.id, runs.frontier,
               LEAST(runs.frontier + :count - (SELECT count(*) FROM requeued), runs.num_tasks)
                   AS stop
        FROM runs JOIN run ON runs.id = run.id
        FOR UPDATE OF runs
    ),
    inserted AS (
        INSERT INTO tasks (run_id, idx, state, progress, worker_uuid, attempts, lease_expires)
        SELECT before.id, idx, :computing, 0, :worker_uuid, 1, (SELECT expires FROM lease)
        FROM before, generate_series(before.frontier, before.stop - 1) AS idx
        ON CONFLICT DO NOTHING
        RETURNING idx, progress, attempts
    ),
    moved AS (
        UPDATE runs
        SET frontier = before.stop,
            num_computing = runs.num_computing
                + (SELECT count(*) FROM reclaimed) + (SELECT count(*) FROM inserted)
        FROM before
        WHERE runs.id = before.id
    )
    SELECT run.num_tasks, (SELECT stop FROM before) AS frontier,
           (SELECT expires FROM lease) AS lease_expires,
           claimed.idx, claimed.progress, claimed.attempts
    FROM run LEFT JOIN (
        SELECT 0 AS turn, * FROM reclaimed
        UNION ALL
        SELECT 1 AS turn, * FROM inserted
    ) AS claimed ON true
    ORDER BY claimed.turn, claimed.idx
    """
    )
    .bindparams(
        sa.bindparam("now", type_=UtcDateTime),
        sa.bindparam("computing", TaskState.COMPUTING, type_=tasks.c.state.type),
        sa.bindparam("count", type_=sa.BigInteger),
    )
    .columns(lease_expires=UtcDateTime)
)


def claim(
    connection: sa.Connection, run_uuid: str, worker_uuid: str, now: dt.datetime, count: int
) -> list[Task]:
    """`next_claim` and `Task.claimed_by`, `count` times over, in as many statements as
    tasks stored out of order past the frontier make it take (usually one); the connection
    commits each as it runs. Raises RunNotFound."""
    claimed: list[Task] = []
    while len(claimed) < count:
        asked = count - len(claimed)
        parameters = {"run_uuid": run_uuid, "worker_uuid": worker_uuid, "now": now, "count": asked}
        rows = connection.execute(_CLAIM, parameters).all()
        if not rows:
            raise RunNotFound(run_uuid)
        taken = [_claimed(row, worker_uuid) for row in rows if row.idx is not None]
        claimed += taken
        # Fewer than asked with untouched tasks left: some past the frontier were stored out
        # of order, and skipped; the frontier moved past them. Look further.
        if len(taken) == asked or rows[0].frontier >= rows[0].num_tasks:
            break
    return claimed


def _claimed(row: sa.Row[Any], worker_uuid: str) -> Task:
    return Task(
        index=row.idx,
        state=TaskState.COMPUTING,
        progress=row.progress,
        worker=worker_uuid,
        attempts=row.attempts,
        lease_expires=row.lease_expires,
    )
