"""A look at one run in SQL, and a claim, read indexes of the rows they want, which older
databases gain."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy import SqlStorage
from taskfarm.domain import RunPolicy, SchemaMismatch, TaskChange, TaskState, Wanted

NEW_INDEXES = {"tasks_computing_by_run", "tasks_failed_by_idx"}
NOW = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@pytest.fixture
def database(tmp_path: Path) -> Iterator[tuple[str, SqlStorage]]:
    url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    storage = SqlStorage.from_url(url)
    storage.create_schema()
    try:
        yield str(tmp_path / "taskfarm.db"), storage
    finally:
        storage.close()


@contextmanager
def statements_run() -> Iterator[list[tuple[str, Any]]]:
    """The SQL statements any engine runs meanwhile, with their parameters."""
    run: list[tuple[str, Any]] = []

    def record(
        conn: object, cursor: object, statement: str, parameters: Any, *args: object
    ) -> None:
        run.append((statement, parameters))

    sa.event.listen(sa.Engine, "before_cursor_execute", record)
    try:
        yield run
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", record)


def plan(path: str, statement: str, parameters: Any) -> str:
    with sqlite3.connect(path) as connection:
        rows = connection.execute(f"EXPLAIN QUERY PLAN {statement}", parameters).fetchall()
    return " | ".join(row[-1] for row in rows)


@pytest.mark.parametrize(
    ("look", "index"),
    [
        (lambda s, uuid: s.runs.holders(uuid), "tasks_computing_by_run"),
        (
            lambda s, uuid: s.runs.list_tasks(uuid, TaskState.FAILED, -1, 10),
            "tasks_failed_by_idx",
        ),
        (
            lambda s, uuid: s.runs.requeued_tasks(uuid, 10),
            "tasks_queued_by_idx tasks_deferred_by_idx",
        ),
    ],
    ids=["holders", "failed", "requeued"],
)
def test_a_look_at_a_run_searches_an_index_of_only_the_rows_it_wants(
    database: tuple[str, SqlStorage], look: Callable[[SqlStorage, str], object], index: str
) -> None:
    path, storage = database
    run = storage.runs.create_run("run", 10**9, RunPolicy())
    with statements_run() as run_statements:
        look(storage, run.uuid)
    assert indexes_read(path, run_statements) == index.split()


def test_a_claim_reads_each_queue_of_waiting_tasks_from_an_index_of_its_own(
    database: tuple[str, SqlStorage],
) -> None:
    path, storage = database
    run = storage.runs.create_run("run", 1, RunPolicy())
    with statements_run() as run_statements:
        # One task past the frontier, then none: the claim looks in both queues.
        asyncio.run(storage.runs.claim_batch(run.uuid, [Wanted("worker", 2)], NOW))
    assert indexes_read(path, run_statements) == ["tasks_queued_by_idx", "tasks_deferred_by_idx"]


def indexes_read(path: str, run_statements: list[tuple[str, Any]]) -> list[str]:
    """The index each statement that selects from the tasks table reads, in turn."""
    plans = [
        plan(path, statement, parameters)
        for statement, parameters in run_statements
        if statement.lstrip().upper().startswith("SELECT") and "FROM tasks" in statement
    ]
    return [
        found.group(1) if (found := re.search(r"USING (?:COVERING )?INDEX (\w+)", p)) else p
        for p in plans
    ]


def test_a_database_made_before_these_indexes_gains_them_by_an_upgrade(
    database: tuple[str, SqlStorage],
) -> None:
    path, storage = database
    run = storage.runs.create_run("run", 3, RunPolicy())
    storage.runs.update_task(run.uuid, 0, TaskChange(state=TaskState.FAILED), NOW)
    with sqlite3.connect(path) as connection:
        for name in NEW_INDEXES:
            connection.execute(f"DROP INDEX {name}")
        # What later revisions added goes too (0004's table and column, 0005's indexes,
        # 0006's and 0007's columns and table, 0008's): the database is one of 0002 indeed.
        connection.execute("DROP TABLE worker_tokens")
        connection.execute("DROP TABLE login_failures")
        connection.execute("DROP INDEX runs_by_owner")
        connection.execute("ALTER TABLE runs DROP COLUMN owner")
        connection.execute("ALTER TABLE workers DROP COLUMN owner")
        connection.execute("ALTER TABLE users DROP COLUMN admin")
        connection.execute("DROP TABLE task_inputs")
        connection.execute("ALTER TABLE runs DROP COLUMN inputs")
        connection.execute("ALTER TABLE runs DROP COLUMN sweep")
        connection.execute("DROP INDEX runs_by_name")
        connection.execute("ALTER TABLE runs DROP COLUMN name")
        connection.execute("DROP INDEX tasks_queued_by_idx")
        connection.execute("DROP INDEX tasks_deferred_by_idx")
        connection.execute(
            "CREATE INDEX tasks_waiting_by_idx ON tasks (run_id, idx) WHERE state = 'waiting'"
        )
        connection.execute("DROP TABLE task_attempts")
        connection.execute("ALTER TABLE tasks DROP COLUMN started")
        connection.execute("UPDATE alembic_version SET version_num = '0002'")
    with pytest.raises(SchemaMismatch, match="taskfarm db upgrade"):
        storage.create_schema()

    storage.upgrade_schema()

    with sqlite3.connect(path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert names >= NEW_INDEXES
    failed = storage.runs.list_tasks(run.uuid, TaskState.FAILED, -1, 10)
    assert ([task.index for task in failed.tasks], failed.next_after) == ([0], None)
