"""The inputs of runs' tasks: staged in chunks before their run exists, read for the tasks
handed out, deleted with their run."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.tables import runs, task_inputs
from taskfarm.domain import RunNotFound, Sweep

_SWEEP = sa.select(runs.c.sweep).where(runs.c.uuid == sa.bindparam("uuid"))


def stage_inputs(
    connection: sa.Connection, run_uuid: str, first: int, inputs: Sequence[str]
) -> None:
    if inputs:
        rows = [
            {"run_uuid": run_uuid, "idx": index, "value": value}
            for index, value in enumerate(inputs, start=first)
        ]
        connection.execute(sa.insert(task_inputs), rows)


def delete_inputs(connection: sa.Connection, run_uuid: str) -> None:
    connection.execute(sa.delete(task_inputs).where(task_inputs.c.run_uuid == run_uuid))


def run_sweep(connection: sa.Connection, run_uuid: str) -> Sweep:
    encoded = connection.execute(_SWEEP, {"uuid": run_uuid}).scalar()
    if encoded is None:
        raise RunNotFound(run_uuid)
    return Sweep.decoded(encoded)


def read_inputs(
    connection: sa.Connection, run_uuid: str, indices: Sequence[int]
) -> list[str | None]:
    wanted = sa.select(task_inputs.c.idx, task_inputs.c.value).where(
        task_inputs.c.run_uuid == run_uuid
    )
    if _consecutive(indices):
        # A chunk: a range of the primary key. PostgreSQL, before it has statistics of a
        # table just filled (a run uploaded a minute ago), plans a list of a thousand indices
        # as a read of every input of the run, filtered.
        wanted = wanted.where(task_inputs.c.idx.between(indices[0], indices[-1]))
    else:
        wanted = wanted.where(task_inputs.c.idx.in_(indices))
    found = dict(connection.execute(wanted).all())
    return [found.get(index) for index in indices]


def _consecutive(indices: Sequence[int]) -> bool:
    return bool(indices) and list(indices) == list(range(indices[0], indices[0] + len(indices)))
