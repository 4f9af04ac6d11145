"""The records of tasks' last attempts: written in the transaction that ends the attempt,
after its task's row and its run's row are locked, so that they add no lock order of their
own; read beside the tasks they belong to."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from taskfarm.adapters.sqlalchemy.rows import attempt_values
from taskfarm.adapters.sqlalchemy.tables import task_attempts
from taskfarm.domain import Attempt

_COLUMNS = [column.name for column in task_attempts.c if not column.primary_key]
# Executed with many parameter sets, an UPDATE binds its key by names of its own: a column's
# name is reserved for its value.
_REPLACE = sa.update(task_attempts).where(
    task_attempts.c.run_id == sa.bindparam("key_run_id"),
    task_attempts.c.idx == sa.bindparam("key_idx"),
)


def record_attempts(
    connection: sa.Connection, run_id: int, ended: Iterable[tuple[int, Attempt | None]]
) -> None:
    """Keeps, for each task index, the attempt that ended (`kept_attempt`): a record kept
    anyway replaces the task's, or is its first; another replaces one only."""
    kept_anyway: list[dict[str, Any]] = []
    replacing: list[dict[str, Any]] = []
    for index, attempt in ended:
        if attempt is None:
            continue
        values = attempt_values(attempt)
        if attempt.kept_anyway:
            kept_anyway.append({"run_id": run_id, "idx": index, **values})
        else:
            replacing.append({"key_run_id": run_id, "key_idx": index, **values})
    if kept_anyway:
        insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
        statement = insert(task_attempts)
        connection.execute(
            statement.on_conflict_do_update(
                index_elements=[task_attempts.c.run_id, task_attempts.c.idx],
                set_={name: statement.excluded[name] for name in _COLUMNS},
            ),
            kept_anyway,
        )
    if replacing:
        connection.execute(_REPLACE, replacing)


def forget_attempts(connection: sa.Connection, run_id: int) -> None:
    connection.execute(sa.delete(task_attempts).where(task_attempts.c.run_id == run_id))
