"""Schema migrations on real SQLite and PostgreSQL databases.

Databases made by earlier taskfarms are made here as those made them: by replaying the DDL
their `metadata.create_all` emitted (`schemas/<commit>.<dialect>.sql`), then writing rows as
they wrote them. `taskfarm db upgrade` must bring them to the current schema with every row
intact, and a new database must be the same as one upgraded from nothing.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner, Result

from taskfarm.adapters.sqlalchemy import SqlStorage, tables
from taskfarm.adapters.sqlalchemy.engine import create_engine
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import (
    FULL_PROGRESS,
    PROGRESS_UNITS_PER_PERCENT,
    RunPolicy,
    SchemaMismatch,
    TaskChange,
    TaskState,
)
from taskfarm.entrypoints.cli.main import cli
from tests.fakes import FakeClock, FakeHasher
from tests.integration.conftest import BACKENDS, SQL_BACKENDS
from tests.integration.live_server import free_port

SCHEMAS = Path(__file__).with_name("schemas")
#: The commits whose tables `schemas/` holds: the first schema, and the last one made
#: without migrations (revision 0002's; 0003 only adds indexes).
FIRST_TASKFARM, LAST_TASKFARM_WITHOUT_MIGRATIONS = "d181279", "1deb314"
HEAD = "0008"
#: How `taskfarm db` names the latest version.
LATEST = "version 0008 (owners and tokens"
MIGRATIONS = "taskfarm.adapters.sqlalchemy:migrations"

NOW = dt.datetime(2025, 3, 1, 12, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
PASSWORD = "analytical engine"
SIGNING_KEY = bytes(range(32))
PERCENT = PROGRESS_UNITS_PER_PERCENT

MakeDatabase = Callable[[], str]


@pytest.fixture(params=SQL_BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MakeDatabase]:
    """Makes empty databases, all SQLite or all PostgreSQL, and returns their URLs."""
    numbers = itertools.count()
    with contextlib.ExitStack() as stack:

        def make() -> str:
            directory = tmp_path / f"database-{next(numbers)}"
            directory.mkdir()
            factory = stack.enter_context(BACKENDS[request.param](request, directory))
            assert factory.url is not None
            return factory.url

        yield make


@contextlib.contextmanager
def connected(url: str) -> Iterator[sa.Connection]:
    """A connection in a transaction, committed at the end, by taskfarm's own engine code."""
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            yield connection
    finally:
        engine.dispose()


def create_schema(url: str) -> None:
    """What every server process does first."""
    storage = SqlStorage.from_url(url)
    try:
        storage.create_schema()
    finally:
        storage.close()


def taskfarm(url: str, *args: str) -> Result:
    runner = CliRunner(env={"DATABASE_URL": url, "TASKFARM_SECRET_KEY": ""})
    return runner.invoke(cli, list(args))


# Databases of earlier taskfarms


def replay(url: str, commit: str) -> None:
    """Creates the tables exactly as taskfarm `commit` created them."""
    with connected(url) as connection:
        ddl = (SCHEMAS / f"{commit}.{connection.dialect.name}.sql").read_text()
        for statement in ddl.split(";"):
            lines = [line for line in statement.splitlines() if not line.startswith("--")]
            if "".join(lines).strip():
                connection.exec_driver_sql("\n".join(lines))


def migrate(url: str, revision: str) -> None:
    """Upgrades an empty database to `revision` with the migrations, recording it."""
    config = Config()
    config.set_main_option("script_location", MIGRATIONS)
    with connected(url) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def _old(name: str, *columns: str | sa.ColumnClause[Any]) -> sa.TableClause:
    return sa.table(name, *(sa.column(c) if isinstance(c, str) else c for c in columns))


OLD_USERS = _old("users", "username", "password_hash", "token_stamp")
OLD_SETTINGS = _old("settings", "name", sa.column("value", sa.LargeBinary()))
OLD_WORKERS = _old("workers", "uuid", "hostname", "pid", sa.column("started", tables.UtcDateTime()))
OLD_RUNS = _old("runs", "uuid", "num_tasks", "frontier", "num_computing", "num_done", "progress")
OLD_TASKS = _old("tasks", "run_id", "idx", "state", "progress", "worker_uuid")

#: Run `old`'s tasks as the first taskfarm stored them: (index, state, progress, worker).
OLD_TASK_ROWS = [
    (0, "done", FULL_PROGRESS, "w-1"),
    (1, "computing", 40 * PERCENT, "w-1"),
    (2, "computing", 0, "w-2"),
    (3, "waiting", 25 * PERCENT, None),  # handed back by its worker
    (4, "done", FULL_PROGRESS, "w-2"),
    (7, "done", FULL_PROGRESS, None),  # written ahead of the frontier, never claimed
]


def write_as_the_first_taskfarm(url: str) -> None:
    """A user and the signing key, two workers, a run with tasks in every state that
    taskfarm had, and a run nobody touched: rows as the first taskfarm wrote them."""
    with connected(url) as connection:
        connection.execute(
            sa.insert(OLD_USERS),
            {"username": "ada", "password_hash": FakeHasher().hash(PASSWORD), "token_stamp": "s"},
        )
        connection.execute(sa.insert(OLD_SETTINGS), {"name": "signing_key", "value": SIGNING_KEY})
        connection.execute(
            sa.insert(OLD_WORKERS),
            [
                {"uuid": "w-1", "hostname": "node1", "pid": 101, "started": NOW - 2 * HOUR},
                {"uuid": "w-2", "hostname": "node2", "pid": 102, "started": NOW - HOUR},
            ],
        )
        connection.execute(
            sa.insert(OLD_RUNS),
            [
                {
                    "uuid": "old",
                    "num_tasks": 10,
                    "frontier": 5,
                    "num_computing": 2,
                    "num_done": 3,
                    "progress": sum(progress for _, _, progress, _ in OLD_TASK_ROWS),
                },
                {
                    "uuid": "untouched",
                    "num_tasks": 3,
                    "frontier": 0,
                    "num_computing": 0,
                    "num_done": 0,
                    "progress": 0,
                },
            ],
        )
        run_id = connection.execute(sa.text("SELECT id FROM runs WHERE uuid = 'old'")).scalar()
        connection.execute(
            sa.insert(OLD_TASKS),
            [
                {"run_id": run_id, "idx": i, "state": s, "progress": p, "worker_uuid": w}
                for i, s, p, w in OLD_TASK_ROWS
            ],
        )


#: Every column of the first schema, by table, and the order to read the rows in.
FIRST_SCHEMA_ROWS = {
    "users": ("id, username, password_hash, token_stamp", "id"),
    "settings": ("name, value", "name"),
    "workers": ("id, uuid, hostname, pid, started", "id"),
    "runs": (
        "id, uuid, num_tasks, frontier, num_computing, num_done, progress, created_at",
        "id",
    ),
    "tasks": ("run_id, idx, state, progress, worker_uuid, updated_at", "run_id, idx"),
}


def rows_of_the_first_schema(url: str) -> dict[str, list[tuple[Any, ...]]]:
    with connected(url) as connection:
        return {
            table: [
                tuple(row)
                for row in connection.execute(
                    sa.text(f"SELECT {columns} FROM {table} ORDER BY {order}")
                )
            ]
            for table, (columns, order) in FIRST_SCHEMA_ROWS.items()
        }


@pytest.fixture(params=["made by the first taskfarm", "migrated to revision 0001"])
def first_schema_database(request: pytest.FixtureRequest, new_database: MakeDatabase) -> str:
    """A database of the first schema holding data: unversioned, as the first taskfarm made
    it, or recorded at revision 0001, as the migration makes it."""
    url = new_database()
    if request.param == "made by the first taskfarm":
        replay(url, FIRST_TASKFARM)
    else:
        migrate(url, "0001")
    write_as_the_first_taskfarm(url)
    return url


# What a database holds


def recorded_revision(url: str) -> str | None:
    with connected(url) as connection:
        return MigrationContext.configure(connection).get_current_revision()


def shape(url: str) -> dict[str, Any]:
    """Everything the database says about its tables but the order of their columns (a
    column added by a migration comes last) and Alembic's own table."""
    with connected(url) as connection:
        inspector = sa.inspect(connection)
        dialect = connection.dialect
        return {
            name: {
                "columns": {
                    column["name"]: (
                        column["type"].compile(dialect=dialect),
                        column["nullable"],
                        column["default"],
                    )
                    for column in inspector.get_columns(name)
                },
                "primary key": inspector.get_pk_constraint(name),
                "foreign keys": inspector.get_foreign_keys(name),
                "unique": sorted(u["column_names"] for u in inspector.get_unique_constraints(name)),
                "indexes": sorted(
                    (
                        index["name"],
                        index["column_names"],
                        bool(index["unique"]),
                        str(index.get("dialect_options", {}).get(f"{dialect.name}_where")),
                    )
                    for index in inspector.get_indexes(name)
                ),
                "checks": sorted(
                    (check["name"], check["sqltext"])
                    for check in inspector.get_check_constraints(name)
                ),
            }
            for name in inspector.get_table_names()
            if name != "alembic_version"
        }


def assert_the_server_works_on_the_old_data(url: str) -> None:
    clock = FakeClock(NOW)
    services = bootstrap(Settings(database_url=url), clock=clock, hasher=FakeHasher())
    farm = services.taskfarm
    try:
        assert services.accounts.authenticate("ada", PASSWORD).username == "ada"
        assert services.storage.keys.signing_key(lambda: b"another key") == SIGNING_KEY

        old = farm.get_run("old")
        assert old.policy == RunPolicy()
        assert (old.num_done, old.num_computing, old.num_waiting, old.num_failed) == (3, 2, 5, 0)
        assert old.percent_done == pytest.approx(36.5)
        assert farm.get_task("old", 1).attempts == 1
        assert farm.get_task("old", 3).attempts == 0
        held = [(s.worker.uuid, s.tasks_held, s.worker.last_seen) for s in farm.list_workers()]
        assert held == [("w-1", 1, NOW - 2 * HOUR), ("w-2", 1, NOW - HOUR)]

        farm.update_task("old", 1, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE), "w-1")
        # The task handed back goes first, with its progress; the frontier then skips the
        # task written ahead of it.
        claimed = farm.claim_tasks("old", "w-2", 10)
        assert [task.index for task in claimed] == [3, 5, 6, 8, 9]
        assert (claimed[0].progress, claimed[0].attempts) == (25 * PERCENT, 1)
        old = farm.get_run("old")
        assert (old.num_done, old.num_computing, old.num_waiting) == (4, 6, 0)
        assert farm.get_run("untouched").num_waiting == 3

        # A run of the new kind loses its only attempt: `failed` is a state the tasks can hold.
        new = farm.create_run(1, lease_seconds=10, max_attempts=1)
        assert new.id > old.id
        farm.claim_tasks(new.uuid, "w-1")
        clock.advance(dt.timedelta(seconds=11))
        assert farm.expire_leases() == 1
        assert farm.get_task(new.uuid, 0).state is TaskState.FAILED
        assert farm.get_run(new.uuid).num_failed == 1
    finally:
        services.close()


# Upgrading


def test_upgrading_the_first_schema_keeps_every_row_and_the_server_works_on_them(
    first_schema_database: str,
) -> None:
    url = first_schema_database
    before = rows_of_the_first_schema(url)

    upgraded = taskfarm(url, "db", "upgrade")

    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.startswith("Upgraded the schema from version 0001 (the first schema")
    assert f"to {LATEST}" in upgraded.output
    assert recorded_revision(url) == HEAD
    assert rows_of_the_first_schema(url) == before
    with connected(url) as connection:
        runs = connection.execute(
            sa.text("SELECT uuid, lease_seconds, max_attempts, num_failed FROM runs ORDER BY id")
        ).all()
        task_rows = connection.execute(
            sa.text("SELECT idx, attempts, lease_expires FROM tasks ORDER BY idx")
        ).all()
        seen = connection.execute(sa.text("SELECT last_seen = started FROM workers")).scalars()
        assert [tuple(run) for run in runs] == [
            ("old", None, None, 0),
            ("untouched", None, None, 0),
        ]
        assert [tuple(task) for task in task_rows] == [
            (0, 1, None),
            (1, 1, None),
            (2, 1, None),
            (3, 0, None),
            (4, 1, None),
            (7, 0, None),
        ]
        assert all(seen.all())
    assert_the_server_works_on_the_old_data(url)

    again = taskfarm(url, "db", "upgrade")
    assert again.exit_code == 0, again.output
    assert again.output.startswith(f"The schema is up to date at {LATEST}")


def test_an_upgraded_database_has_the_schema_of_a_new_one(
    first_schema_database: str, new_database: MakeDatabase
) -> None:
    new = new_database()
    assert taskfarm(first_schema_database, "db", "upgrade").exit_code == 0
    assert taskfarm(new, "db", "init").exit_code == 0
    assert shape(first_schema_database) == shape(new)


def test_a_database_of_the_last_taskfarm_without_migrations_is_recognised_and_upgraded(
    new_database: MakeDatabase,
) -> None:
    url = new_database()
    replay(url, LAST_TASKFARM_WITHOUT_MIGRATIONS)
    with connected(url) as connection:
        connection.execute(
            sa.insert(tables.runs).values(uuid="kept", num_tasks=4, lease_seconds=60, frontier=0)
        )

    upgraded = taskfarm(url, "db", "upgrade")

    assert upgraded.exit_code == 0, upgraded.output
    assert upgraded.output.startswith("Upgraded the schema from version 0002 (leases")
    assert recorded_revision(url) == HEAD
    new = new_database()
    assert taskfarm(new, "db", "init").exit_code == 0
    assert shape(url) == shape(new)
    services = bootstrap(Settings(database_url=url), hasher=FakeHasher())
    try:
        assert services.taskfarm.get_run("kept").policy == RunPolicy(lease_seconds=60)
    finally:
        services.close()


def test_an_upgrade_that_fails_changes_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    replay(url, FIRST_TASKFARM)
    write_as_the_first_taskfarm(url)
    # A task of a run that does not exist, which SQLite lets in with foreign keys off.
    with contextlib.closing(sqlite3.connect(tmp_path / "taskfarm.db")) as raw:
        raw.execute("INSERT INTO tasks (run_id, idx, state, progress) VALUES (99, 0, 'done', 0)")
        raw.commit()
    before, rows = shape(url), rows_of_the_first_schema(url)

    failed = taskfarm(url, "db", "upgrade")

    assert failed.exit_code == 1
    assert "refer" in failed.output
    assert "nothing was changed" in failed.output
    assert recorded_revision(url) is None
    assert shape(url) == before
    assert rows_of_the_first_schema(url) == rows


# Creating


def test_db_init_on_an_empty_database_is_upgrading_it_from_nothing(
    new_database: MakeDatabase,
) -> None:
    initialised, upgraded = new_database(), new_database()

    init = taskfarm(initialised, "db", "init")
    upgrade = taskfarm(upgraded, "db", "upgrade")

    assert init.exit_code == 0, init.output
    assert upgrade.exit_code == 0, upgrade.output
    assert upgrade.output.startswith(f"Created the schema at {LATEST}")
    assert recorded_revision(initialised) == recorded_revision(upgraded) == HEAD
    assert shape(initialised) == shape(upgraded)

    made = shape(initialised)
    assert taskfarm(initialised, "db", "init").exit_code == 0
    assert shape(initialised) == made


def test_the_migrations_make_exactly_the_tables_of_the_metadata(
    new_database: MakeDatabase,
) -> None:
    migrated, created = new_database(), new_database()
    assert taskfarm(migrated, "db", "upgrade").exit_code == 0
    with connected(created) as connection:
        tables.metadata.create_all(connection)

    with connected(migrated) as connection:
        assert compare_metadata(MigrationContext.configure(connection), tables.metadata) == []
    # What comparing metadata leaves out: CHECK constraints, the WHERE of partial indexes.
    assert shape(migrated) == shape(created)


def test_revision_0001_makes_the_tables_of_the_first_taskfarm(new_database: MakeDatabase) -> None:
    replayed, migrated = new_database(), new_database()
    replay(replayed, FIRST_TASKFARM)
    migrate(migrated, "0001")
    assert shape(migrated) == shape(replayed)


def test_servers_starting_together_on_an_empty_database_create_it_once(
    new_database: MakeDatabase,
) -> None:
    url = new_database()
    servers = 6
    start = threading.Barrier(servers)
    errors: list[BaseException] = []

    def start_a_server() -> None:
        storage = SqlStorage.from_url(url)
        try:
            start.wait(timeout=30)
            storage.create_schema()
        except BaseException as error:
            errors.append(error)
        finally:
            storage.close()

    threads = [threading.Thread(target=start_a_server) for _ in range(servers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    with connected(url) as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert [tuple(version) for version in versions] == [(HEAD,)]


# Refusing


def test_an_older_schema_is_refused_with_a_message_saying_how_to_upgrade(
    first_schema_database: str,
) -> None:
    url = first_schema_database
    before, rows = shape(url), rows_of_the_first_schema(url)

    served = taskfarm(url, "serve", "--port", str(free_port()))
    initialised = taskfarm(url, "db", "init")
    with pytest.raises(SchemaMismatch, match="taskfarm db upgrade") as refused:
        create_schema(url)

    for result in (served, initialised):
        assert result.exit_code == 1
        assert str(refused.value) in result.output
    assert "version 0001 (the first schema" in str(refused.value)
    assert "back the database up" in str(refused.value)
    assert shape(url) == before
    assert rows_of_the_first_schema(url) == rows


def test_a_schema_newer_than_this_taskfarm_is_refused(new_database: MakeDatabase) -> None:
    url = new_database()
    assert taskfarm(url, "db", "init").exit_code == 0
    with connected(url) as connection:
        connection.execute(sa.text("UPDATE alembic_version SET version_num = '0099'"))

    with pytest.raises(SchemaMismatch, match="version 0099, which this taskfarm does not know"):
        create_schema(url)
    upgraded = taskfarm(url, "db", "upgrade")
    assert upgraded.exit_code == 1
    assert "A later taskfarm upgraded the database" in upgraded.output
    assert recorded_revision(url) == "0099"


def test_tables_that_no_taskfarm_made_are_refused(new_database: MakeDatabase) -> None:
    url = new_database()
    with connected(url) as connection:
        connection.execute(sa.text("CREATE TABLE runs (id INTEGER PRIMARY KEY, name TEXT)"))

    for command_line in (["db", "init"], ["db", "upgrade"]):
        result = taskfarm(url, *command_line)
        assert result.exit_code == 1
        assert "tables named as taskfarm's (runs) but not as any taskfarm made them" in (
            result.output
        )
    assert recorded_revision(url) is None


# Stores without a schema


@pytest.mark.parametrize("backend", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
def test_upgrading_a_store_without_a_schema_says_there_is_nothing_to_do(
    backend: str, request: pytest.FixtureRequest
) -> None:
    url = "memory://" if backend == "memory" else request.getfixturevalue("redis_url")
    result = taskfarm(url, "db", "upgrade")
    assert result.exit_code == 0, result.output
    assert result.output == "This database keeps no schema: there is nothing to upgrade.\n"
