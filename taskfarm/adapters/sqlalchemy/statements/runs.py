"""Statements on whole runs: one row each, whatever their number of tasks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import RUN_COLUMNS, policy_values, run_from_row
from taskfarm.adapters.sqlalchemy.statements.inputs import delete_inputs
from taskfarm.adapters.sqlalchemy.statements.upserts import insert_if_absent
from taskfarm.adapters.sqlalchemy.tables import runs, tasks
from taskfarm.domain import Conflict, Run, RunInputs, RunNotFound, RunPolicy, name_taken

# Built once: a claim runs these every time, and building a statement costs more than
# running it on SQLite.
_RUN_BY_UUID = sa.select(*RUN_COLUMNS).where(runs.c.uuid == sa.bindparam("uuid"))
_LOCKED_RUN = sa.select(*RUN_COLUMNS).where(runs.c.id == sa.bindparam("id")).with_for_update()
_RUN_ID = sa.select(runs.c.id).where(runs.c.id == sa.bindparam("id"))
_RUN_NAMED = sa.select(runs.c.uuid).where(runs.c.name == sa.bindparam("name"))


def insert_run(
    connection: sa.Connection,
    uuid: str,
    num_tasks: int,
    policy: RunPolicy,
    name: str | None,
    created: dt.datetime | None,
    inputs: RunInputs | None,
    owner: str | None,
) -> Run:
    values: dict[str, Any] = {
        "uuid": uuid,
        "num_tasks": num_tasks,
        "name": name,
        "owner": owner,
        **policy_values(policy),
    }
    if inputs is not None:
        values["inputs"] = inputs.kind.value
        values["sweep"] = None if inputs.sweep is None else inputs.sweep.encoded()
    if created is not None:
        values["created_at"] = created
    statement = insert_if_absent(connection.dialect.name, runs, values)
    row = connection.execute(statement.returning(*RUN_COLUMNS)).first()
    if row is not None:
        return run_from_row(row)
    if name is not None and connection.execute(_RUN_NAMED, {"name": name}).first():
        raise name_taken(name)
    raise Conflict(f"there is already a run with uuid {uuid!r}")


def named_run(connection: sa.Connection, name: str) -> str:
    uuid = connection.execute(_RUN_NAMED, {"name": name}).scalar()
    if uuid is None:
        raise RunNotFound(name)
    return str(uuid)


def select_runs(connection: sa.Connection, owner: str | None) -> list[Run]:
    selected = sa.select(*RUN_COLUMNS).order_by(runs.c.id)
    if owner is not None:
        selected = selected.where(runs.c.owner == owner)
    return [run_from_row(row) for row in connection.execute(selected)]


def disown(connection: sa.Connection, owner: str) -> int:
    return connection.execute(
        sa.update(runs).where(runs.c.owner == owner).values(owner=None)
    ).rowcount


def load_run(connection: sa.Connection, uuid: str) -> Run:
    row = connection.execute(_RUN_BY_UUID, {"uuid": uuid}).first()
    if row is None:
        raise RunNotFound(uuid)
    return run_from_row(row)


def lock_run(connection: sa.Connection, run: Run) -> Run:
    """Locks the run's row until the end of the transaction and returns it as it is now (on
    PostgreSQL, as the last transaction that held the lock left it); raises RunNotFound if
    it is gone."""
    locked = connection.execute(_LOCKED_RUN, {"id": run.id}).first()
    if locked is None:
        raise RunNotFound(run.uuid)
    return run_from_row(locked)


def run_exists(connection: sa.Connection, run: Run) -> bool:
    return connection.execute(_RUN_ID, {"id": run.id}).first() is not None


def delete_run(connection: sa.Connection, uuid: str) -> None:
    run = load_run(connection, uuid)
    # Tasks first, then the run: the order in which claims lock them, so that deleting cannot
    # deadlock with a claim. The cascade deletes a task a claim inserted meanwhile.
    connection.execute(sa.delete(tasks).where(tasks.c.run_id == run.id))
    connection.execute(sa.delete(runs).where(runs.c.id == run.id))
    delete_inputs(connection, uuid)
