"""Handing out tasks and changing them, exactly once, among many concurrent server processes.

On PostgreSQL every transaction here locks task rows before its run's row, with one
exception: the inserts of tasks nobody stored yet happen under the run's row lock. Such an
insert waits on no other lock, because every insert of a task holds its run's row: so the
waits always go from tasks to runs and never form a cycle. SQLite has one writer at a time
(`BEGIN IMMEDIATE`) and ignores the row locks.
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Sequence
from typing import Any

import attrs
import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import TASK_COLUMNS, task_from_row
from taskfarm.adapters.sqlalchemy.statements.attempts import record_attempts
from taskfarm.adapters.sqlalchemy.statements.counters import Change, move_counters
from taskfarm.adapters.sqlalchemy.statements.runs import load_run, lock_run, run_exists
from taskfarm.adapters.sqlalchemy.statements.task_writes import insert_tasks, update_tasks
from taskfarm.adapters.sqlalchemy.tables import is_deferred, is_queued, tasks
from taskfarm.adapters.sqlalchemy.transactions import TryAgain
from taskfarm.domain import Conflict, Run, RunNotFound, Task, TaskChange, Wanted


def _first_waiting(queue: sa.ColumnElement[bool]) -> sa.Select[Any]:
    # SKIP LOCKED: a waiting task that another claim holds is that claim's; look further.
    return (
        sa.select(*TASK_COLUMNS)
        .where(tasks.c.run_id == sa.bindparam("run_id"), queue)
        .order_by(tasks.c.idx)
        .limit(sa.bindparam("count"))
        .with_for_update(skip_locked=True)
    )


_QUEUED, _DEFERRED = _first_waiting(is_queued), _first_waiting(is_deferred)


def claim_together(
    connection: sa.Connection, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
) -> list[list[Task]]:
    """The claims of a batch, each in turn, in one transaction (SQLite's claims; PostgreSQL's
    are one statement, `pg_claims`). They are one `claim` of all the tasks they want, dealt
    out in order: what each would have got claiming after the one before it, in a few
    statements whatever the batch's size. Each gets all it asks for while tasks are left:
    none is short of tasks skipped for being stored out of order."""
    holders = [each.worker_uuid for each in wanted for _ in range(each.count)]
    claimed = iter(claim(connection, load_run(connection, run_uuid), holders, now))
    return [list(itertools.islice(claimed, each.count)) for each in wanted]


def claim(
    connection: sa.Connection, run: Run, holders: Sequence[str], now: dt.datetime
) -> list[Task]:
    """`next_claim` and `Task.claimed_by` once for each of `holders` in turn, the workers a
    task is wanted for: the lowest requeued tasks first, then the lowest untouched ones past
    the frontier, then the lowest deferred ones. Fewer while none are left."""
    claimed = _claim_waiting(connection, _QUEUED, run, holders, now)
    # The frontier only moves forward: a run loaded with none left past it has none now.
    if len(claimed) < len(holders) and run.frontier < run.num_tasks:
        claimed += _claim_past_frontier(connection, run, holders[len(claimed) :], now)
    if len(claimed) < len(holders):
        claimed += _claim_waiting(connection, _DEFERRED, run, holders[len(claimed) :], now)
    if not claimed and not run_exists(connection, run):
        raise RunNotFound(run.uuid)  # deleted since this transaction looked it up
    return claimed


def _claim_waiting(
    connection: sa.Connection,
    queue: sa.Select[Any],
    run: Run,
    holders: Sequence[str],
    now: dt.datetime,
) -> list[Task]:
    """The first tasks of one queue of waiting tasks, claimed for `holders` in turn."""
    rows = connection.execute(queue, {"run_id": run.id, "count": len(holders)})
    changes: list[Change] = []
    for row, holder in zip(rows, holders, strict=False):
        before = task_from_row(row)
        changes.append((before, before.claimed_by(holder, now, run.policy)))
    update_tasks(connection, run.id, changes)
    move_counters(connection, run.id, changes)
    return [after for _, after in changes]


def _claim_past_frontier(
    connection: sa.Connection, run: Run, holders: Sequence[str], now: dt.datetime
) -> list[Task]:
    """Tasks nobody stored, lowest first, claimed for `holders` in turn, with the run's
    frontier and counters moved."""
    # Under the run's row lock, concurrent claims take their turn at the frontier.
    start = frontier = lock_run(connection, run).frontier
    claimed: list[Task] = []
    while len(claimed) < len(holders) and frontier < run.num_tasks:
        end = min(frontier + len(holders) - len(claimed), run.num_tasks)
        candidates = [
            Task.untouched(index).claimed_by(holder, now, run.policy)
            for index, holder in zip(range(frontier, end), holders[len(claimed) :], strict=False)
        ]
        # Tasks written out of order are stored already: not ours, and the frontier skips
        # them. Past one, each task inserted goes to the holder before its candidate's.
        inserted = insert_tasks(connection, run.id, candidates)
        dealt = [
            task if task.worker == holder else attrs.evolve(task, worker=holder)
            for task, holder in zip(inserted, holders[len(claimed) :], strict=False)
        ]
        update_tasks(connection, run.id, zip(inserted, dealt, strict=True))
        claimed.extend(dealt)
        frontier = end
    changes = [(Task.untouched(task.index), task) for task in claimed]
    move_counters(connection, run.id, changes, frontier=None if frontier == start else frontier)
    return claimed


def get_task(connection: sa.Connection, run: Run, index: int) -> Task:
    run.check_index(index)
    row = connection.execute(
        sa.select(*TASK_COLUMNS).where(tasks.c.run_id == run.id, tasks.c.idx == index)
    ).first()
    return Task.untouched(index) if row is None else task_from_row(row)


def update_task(
    connection: sa.Connection,
    run: Run,
    index: int,
    change: TaskChange,
    now: dt.datetime,
    worker_uuid: str | None,
) -> Task:
    """`Task.changed`; its Conflict leaves the transaction having written nothing."""
    changed, refused = change_tasks(connection, run, [index], change, now, worker_uuid)
    if refused:
        raise refused[index]
    return changed[0]


def change_tasks(
    connection: sa.Connection,
    run: Run,
    indices: Sequence[int],
    change: TaskChange,
    now: dt.datetime,
    worker_uuid: str | None,
) -> tuple[list[Task], dict[int, Conflict]]:
    """`Task.changed` for each of the tasks at `indices` (distinct): the tasks changed, and
    the refusals of those left as they were, by index, each in the order of `indices`."""
    for index in indices:
        run.check_index(index)
    stored = {
        task.index: task
        for task in map(
            task_from_row,
            connection.execute(
                sa.select(*TASK_COLUMNS)
                .where(tasks.c.run_id == run.id, tasks.c.idx.in_(indices))
                .order_by(tasks.c.idx)
                .with_for_update()
            ),
        )
    }
    changes: dict[int, Change] = {}
    refused: dict[int, Conflict] = {}
    for index in indices:
        before = stored.get(index, Task.untouched(index))
        try:
            changes[index] = (before, before.changed(change, now, run.policy, worker_uuid))
        except Conflict as refusal:
            refused[index] = refusal
    new = [after for index, (_, after) in changes.items() if index not in stored]
    if new:
        lock_run(connection, run)
        if len(insert_tasks(connection, run.id, new)) < len(new):
            # A claim stored one since we looked. Locking it now, under the run's lock, could
            # deadlock with a claim; start again, and find it stored.
            raise TryAgain
    update_tasks(connection, run.id, [changes[index] for index in changes if index in stored])
    move_counters(connection, run.id, changes.values())
    record_attempts(
        connection,
        run.id,
        [
            (index, before.attempt_ended(change, now, worker_uuid))
            for index, (before, _) in changes.items()
        ],
    )
    return [after for _, after in changes.values()], refused
