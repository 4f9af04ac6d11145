"""Claims on PostgreSQL: one statement, committed as it runs, for the claims of many workers;
and a leaner one for the common case (the frontier statement, at the end).

Every claim of an untouched task moves the same run's frontier, so claims queue at the run's
row. In a transaction of several statements the row stays locked until the server process
has read the last answer, taken its turn at the GIL among its request threads, and sent
COMMIT: milliseconds, under load, during which every other claim of the run waits. This one
statement takes the requeued tasks (SKIP LOCKED: those another claim holds are that claim's),
locks the run's row, inserts the untouched tasks past the frontier, takes deferred tasks once
none is left there, and moves the frontier and the counters; in autocommit, the row is locked
for the time PostgreSQL takes to run it.

One statement serves the claims of a batch (`taskfarm.claim_batches`):
`workers` names, slot by slot, the worker each claimed task goes to, requeued tasks first,
then the untouched tasks of the next stretch past the frontier, in order, then deferred tasks
if that stretch ends the run; tasks stored out of order are skipped, so that the slots left
empty are the last, as if each claim came in turn. Those claims look further in the next
statement.

Task rows are locked before the run's row, as in every other transaction (see `tasks`), but
for the deferred ones, which are known only once the frontier is; every waiting task is locked
with SKIP LOCKED, which never waits, and so cannot close a cycle of waits. The waiting state
and the attempts that tell the queues apart are written as literals: a plan made for any value
of a parameter could not use the partial indexes of waiting tasks, and would read every task
of the run. For the same reason the tasks stored past the
frontier are looked up by a range of the primary key: an anti-join with the series of
indices is planned for a thousand of them, and merged with every task of the run.
"""

from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import UtcDateTime, tasks
from taskfarm.domain import RunNotFound, Task, TaskState, Wanted


@attrs.frozen
class Handed:
    """What one claim statement handed out: the tasks of each `Wanted` in turn, and whether
    tasks nobody stored are left past the frontier (claims that got fewer may look further)."""

    tasks: list[list[Task]]
    untouched_left: bool

    def still_wanted(self, wanted: Sequence[Wanted]) -> list[Wanted | None]:
        """For each of the `wanted` this statement was for, what it still lacks, to look for
        in the next statement: the statement skipped tasks stored out of order and untouched
        ones are left past them. None for a claim that has all it can get."""
        return [
            Wanted(one.worker_uuid, one.count - len(tasks))
            if self.untouched_left and len(tasks) < one.count
            else None
            for one, tasks in zip(wanted, self.tasks, strict=True)
        ]


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
    slots AS (
        SELECT slot, worker FROM unnest(CAST(:workers AS text[])) WITH ORDINALITY AS s(worker, slot)
    ),
    queued_locked AS (
        SELECT tasks.idx FROM tasks JOIN run ON tasks.run_id = run.id
        WHERE tasks.state = 'waiting' AND tasks.attempts = 0
        ORDER BY tasks.idx
        LIMIT (SELECT count(*) FROM slots)
        FOR UPDATE OF tasks SKIP LOCKED
    ),
    requeued AS (
        SELECT idx, row_number() OVER (ORDER BY idx) AS slot FROM queued_locked
    ),
    before AS (
        SELECT runs.id, runs.frontier, (SELECT count(*) FROM requeued) AS requeued,
               LEAST(
                   runs.frontier + (SELECT count(*) FROM slots) - (SELECT count(*) FROM requeued),
                   runs.num_tasks
               ) AS stop
        FROM runs JOIN run ON runs.id = run.id
        FOR UPDATE OF runs
    ),
    stored AS (
        SELECT tasks.idx FROM tasks JOIN before ON tasks.run_id = before.id
        WHERE tasks.idx >= before.frontier AND tasks.idx < before.stop
    ),
    untouched AS (
        SELECT g.idx, before.requeued + row_number() OVER (ORDER BY g.idx) AS slot
        FROM before CROSS JOIN generate_series(before.frontier, before.stop - 1) AS g(idx)
        WHERE g.idx NOT IN (SELECT idx FROM stored)
    ),
    deferred_locked AS (
        SELECT tasks.idx FROM tasks JOIN before ON tasks.run_id = before.id
        WHERE tasks.state = 'waiting' AND tasks.attempts <> 0
        ORDER BY tasks.idx
        LIMIT CASE WHEN (SELECT stop FROM before) < (SELECT num_tasks FROM run) THEN 0
                   ELSE (SELECT count(*) FROM slots) - (SELECT requeued FROM before)
                        - (SELECT count(*) FROM untouched) END
        FOR UPDATE OF tasks SKIP LOCKED
    ),
    waiting AS (
        SELECT 0 AS turn, idx, slot FROM requeued
        UNION ALL
        SELECT 2 AS turn, idx,
               (SELECT requeued FROM before) + (SELECT count(*) FROM untouched)
                   + row_number() OVER (ORDER BY idx) AS slot
        FROM deferred_locked
    ),
    reclaimed AS (
        UPDATE tasks
        SET state = :computing, worker_uuid = slots.worker, attempts = tasks.attempts + 1,
            lease_expires = (SELECT expires FROM lease), started = :now, updated_at = now()
        FROM run, waiting JOIN slots ON slots.slot = waiting.slot
        WHERE tasks.run_id = run.id AND tasks.idx = waiting.idx
        RETURNING waiting.turn, tasks.idx, tasks.progress, tasks.attempts, tasks.worker_uuid
    ),
    inserted AS (
        INSERT INTO tasks
            (run_id, idx, state, progress, worker_uuid, attempts, lease_expires, started)
        SELECT before.id, untouched.idx, :computing, 0, slots.worker, 1,
               (SELECT expires FROM lease), :now
        FROM before CROSS JOIN untouched JOIN slots ON slots.slot = untouched.slot
        ON CONFLICT DO NOTHING
        RETURNING idx, progress, attempts, worker_uuid
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
           claimed.idx, claimed.progress, claimed.attempts, claimed.worker_uuid
    FROM run LEFT JOIN (
        SELECT turn, idx, progress, attempts, worker_uuid FROM reclaimed
        UNION ALL
        SELECT 1 AS turn, idx, progress, attempts, worker_uuid FROM inserted
    ) AS claimed ON true
    ORDER BY claimed.turn, claimed.idx
    """
    )
    .bindparams(
        sa.bindparam("now", type_=UtcDateTime),
        sa.bindparam("computing", TaskState.COMPUTING, type_=tasks.c.state.type),
    )
    .columns(lease_expires=UtcDateTime)
)


def parameters(run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime) -> dict[str, Any]:
    """The parameters of the claim statement: `workers` names the worker of each slot."""
    workers = [claim.worker_uuid for claim in wanted for _ in range(claim.count)]
    return {"run_uuid": run_uuid, "workers": workers, "now": now}


def handed(
    run_uuid: str, wanted: Sequence[Wanted], rows: Sequence[Any], now: dt.datetime
) -> Handed:
    """What the claim statement's rows (read by column name), run at `now`, hand each claim."""
    if not rows:
        raise RunNotFound(run_uuid)
    by_worker: dict[str, collections.deque[Task]] = collections.defaultdict(collections.deque)
    for row in rows:
        if row.idx is not None:
            by_worker[row.worker_uuid].append(_claimed(row, now))
    # A worker's slots are contiguous and in the order of its claims: its tasks go to its
    # claims in that order.
    return Handed(
        [
            [
                by_worker[claim.worker_uuid].popleft()
                for _ in range(claim.count)
                if by_worker[claim.worker_uuid]
            ]
            for claim in wanted
        ],
        untouched_left=rows[0].frontier < rows[0].num_tasks,
    )


def sql(dialect: sa.Dialect) -> str:
    """The full claim statement as the driver takes it, with `parameters` and `computing`."""
    return str(_CLAIM.compile(dialect=dialect))


def _claimed(row: Any, now: dt.datetime) -> Task:
    lease_expires = row.lease_expires
    return Task(
        index=row.idx,
        state=TaskState.COMPUTING,
        progress=row.progress,
        worker=row.worker_uuid,
        attempts=row.attempts,
        # Read by the driver alone, it is in the session's time zone.
        lease_expires=None if lease_expires is None else lease_expires.astimezone(dt.UTC),
        started=now,
    )


# The frontier statement.
#
# Claims on PostgreSQL in the common case, at half the database's cost: a run with no task
# requeued and none stored past its frontier (deferred tasks only matter once the claims
# reach the run's end).
#
# Then the claims of a batch take the next tasks past the frontier, slot by slot, and this
# statement does only that. The full claim statement (above) also looks for requeued
# tasks and steps over tasks stored out of order, and PostgreSQL sets its whole plan up for
# every execution, whatever it finds: twice the CPU of this one for a batch of claims.
#
# When the run has either kind of task, or the claims would reach the run's end while it has
# deferred tasks, in the statement's snapshot, it claims nothing and
# says so (`look_further`): the full statement then claims instead. A task requeued or stored
# out of order by a transaction that commits meanwhile is no more seen here than by the full
# statement, whose snapshot is taken at the same point; should such a task take an index that
# a slot would get, the slot stays empty (ON CONFLICT DO NOTHING) and its claim looks further,
# as when the full statement meets one.

# The waiting state is a literal, as in the full statement: the partial indexes of waiting
# tasks answer whether the run has any. Whether it has tasks past the frontier is asked of its
# highest index, which the primary key holds last: asked as EXISTS, PostgreSQL would scan
# the tasks table, expecting to meet such a task soon.
_FRONTIER_CLAIM = (
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
                   SELECT FROM tasks
                   WHERE tasks.run_id = runs.id AND tasks.state = 'waiting'
                       AND tasks.attempts = 0
               ) OR COALESCE(
                   (SELECT max(tasks.idx) FROM tasks WHERE tasks.run_id = runs.id)
                       >= runs.frontier,
                   false
               ) OR (
                   runs.frontier + cardinality(CAST(:workers AS text[])) > runs.num_tasks
                   AND EXISTS (
                       SELECT FROM tasks
                       WHERE tasks.run_id = runs.id AND tasks.state = 'waiting'
                           AND tasks.attempts <> 0
                   )
               ) AS look_further
        FROM runs JOIN run ON runs.id = run.id
        FOR UPDATE OF runs
    ),
    inserted AS (
        INSERT INTO tasks
            (run_id, idx, state, progress, worker_uuid, attempts, lease_expires, started)
        SELECT before.id, g.idx, :computing, 0,
               (CAST(:workers AS text[]))[g.idx - before.frontier + 1], 1, before.lease_expires,
               :now
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


def frontier_sql(dialect: sa.Dialect) -> str:
    """The frontier statement as the driver takes it, with `parameters` and `computing`; its
    rows are read by `handed` unless `frontier_refused`."""
    return str(_FRONTIER_CLAIM.compile(dialect=dialect))


def frontier_refused(rows: Sequence[Any]) -> bool:
    """Whether the statement claimed nothing because the run has requeued tasks or tasks
    stored past its frontier: then the full statement must claim."""
    return bool(rows) and bool(rows[0].look_further)
