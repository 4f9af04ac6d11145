"""Claims on PostgreSQL in the common case, at half the database's cost: a run with no task
requeued and none stored past its frontier.

Then the claims of a batch take the next tasks past the frontier, slot by slot, and this
statement does only that. The full claim statement (`pg_claims`) also looks for requeued
tasks and steps over tasks stored out of order, and PostgreSQL sets its whole plan up for
every execution, whatever it finds: twice the CPU of this one for a batch of claims.

When the run has either kind of task, in the statement's snapshot, it claims nothing and
says so (`look_further`): the full statement then claims instead. A task requeued or stored
out of order by a transaction that commits meanwhile is no more seen here than by the full
statement, whose snapshot is taken at the same point; should such a task take an index that
a slot would get, the slot stays empty (ON CONFLICT DO NOTHING) and its claim looks further,
as when the full statement meets one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import UtcDateTime, tasks
from taskfarm.domain import TaskState

# The waiting state is a literal, as in `pg_claims`: the partial index of waiting tasks
# answers whether the run has one. Whether it has tasks past the frontier is asked of its
# highest index, which the primary key holds last: asked as EXISTS, PostgreSQL would scan
# the tasks table, expecting to meet such a task soon.
_CLAIM = (
    sa.text(
        """
    WITH run AS (
        SELECT id, num_tasks FROM runs WHERE uuid = :run_uuid
    ),
    before AS (
        SELECT runs.id, runs.frontier,
               LEAST(runs.frontier + cardinality(CAST(:workers AS text[])), runs.num_tasks)
                   AS stop,
               CASE WHEN runs.lease_seconds IS NULL THEN NULL
                    ELSE :now + make_interval(secs => runs.lease_seconds) END AS lease_expires,
               EXISTS (
                   SELECT FROM tasks WHERE tasks.run_id = runs.id AND tasks.state = 'waiting'
               ) OR COALESCE(
                   (SELECT max(tasks.idx) FROM tasks WHERE tasks.run_id = runs.id)
                       >= runs.frontier,
                   false
               ) AS look_further
        FROM runs JOIN run ON runs.id = run.id
        FOR UPDATE OF runs
    ),
    inserted AS (
        INSERT INTO tasks (run_id, idx, state, progress, worker_uuid, attempts, lease_expires)
        SELECT before.id, g.idx, :computing, 0,
               (CAST(:workers AS text[]))[g.idx - before.frontier + 1], 1, before.lease_expires
        FROM before CROSS JOIN generate_series(before.frontier, before.stop - 1) AS g(idx)
        WHERE NOT before.look_further
        ON CONFLICT DO NOTHING
        RETURNING idx, progress, attempts, worker_uuid
    ),
    moved AS (
        UPDATE runs
        SET frontier = before.stop,
            num_computing = runs.num_computing + (SELECT count(*) FROM inserted)
        FROM before
        WHERE runs.id = before.id AND NOT before.look_further
    )
    SELECT run.num_tasks, before.stop AS frontier, before.lease_expires, before.look_further,
           claimed.idx, claimed.progress, claimed.attempts, claimed.worker_uuid
    FROM run CROSS JOIN before LEFT JOIN inserted AS claimed ON true
    ORDER BY claimed.idx
    """
    )
    .bindparams(
        sa.bindparam("now", type_=UtcDateTime),
        sa.bindparam("computing", TaskState.COMPUTING, type_=tasks.c.state.type),
    )
    .columns(lease_expires=UtcDateTime)
)


def sql(dialect: sa.Dialect) -> str:
    """The statement as the driver takes it, with the parameters of `pg_claims.parameters`
    and `computing`; its rows are read by `pg_claims.handed` unless `refused`."""
    return str(_CLAIM.compile(dialect=dialect))


def refused(rows: Sequence[Any]) -> bool:
    """Whether the statement claimed nothing because the run has requeued tasks or tasks
    stored past its frontier: then the full statement must claim."""
    return bool(rows) and bool(rows[0].look_further)
