"""Creating and upgrading the schema with the Alembic migrations in `migrations/`.

Each runs in one transaction that holds the database's schema lock, the advisory lock on
PostgreSQL and BEGIN IMMEDIATE's write lock on SQLite: server processes starting together on
an empty database take turns, and only the first one creates the tables. Both dialects change
their schema inside a transaction, so an upgrade that fails changes nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import alembic.util
import attrs
import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from taskfarm.adapters.sqlalchemy.engine import WRITES, foreign_keys_off
from taskfarm.adapters.sqlalchemy.errors import storage_error
from taskfarm.adapters.sqlalchemy.unversioned import unversioned_revision
from taskfarm.domain import SchemaMismatch, SchemaUpgrade, SchemaVersion, StorageError

T = TypeVar("T")

_MIGRATIONS = "taskfarm.adapters.sqlalchemy:migrations"
# Any fixed number: PostgreSQL advisory locks are named by one.
_SCHEMA_LOCK = 0x7461736B6661726D  # "taskfarm"


def create_schema(engine: sa.Engine) -> None:
    """Upgrades an empty database from nothing and leaves an up-to-date one alone. Raises
    SchemaMismatch for any other: upgrading data is a deliberate step, after a backup."""
    _in_schema_transaction(engine, _create)


def upgrade_schema(engine: sa.Engine) -> SchemaUpgrade:
    """Brings a database, empty or made by any earlier taskfarm, to the current schema."""
    return _in_schema_transaction(engine, _upgrade)


@attrs.frozen
class _Found:
    """The revision a database is at (None: it is empty), and whether Alembic recorded it."""

    revision: str | None
    recorded: bool


def _create(connection: sa.Connection) -> None:
    found = _found(connection)
    head = _history().get_current_head()
    if found.revision is None:
        command.upgrade(_config(connection), "head")
    elif found.revision != head:
        raise _mismatch(found.revision)
    elif not found.recorded:
        # Made by the taskfarm just before migrations, with the current tables: say so.
        command.stamp(_config(connection), found.revision)


def _upgrade(connection: sa.Connection) -> SchemaUpgrade:
    found = _found(connection)
    head = _history().get_current_head()
    if found.revision is not None and _version(found.revision) is None:
        raise _mismatch(found.revision)
    if found.revision is not None and not found.recorded:
        command.stamp(_config(connection), found.revision)
    if found.revision != head:
        command.upgrade(_config(connection), "head")
    return SchemaUpgrade(
        found=None if found.revision is None else _version(found.revision),
        current=_current(),
    )


def _found(connection: sa.Connection) -> _Found:
    recorded = MigrationContext.configure(connection).get_current_revision()
    if recorded is not None:
        return _Found(recorded, recorded=True)
    return _Found(unversioned_revision(connection), recorded=False)


def _mismatch(revision: str) -> SchemaMismatch:
    found = _version(revision)
    if found is None:
        return SchemaMismatch(
            f"the database's schema is at version {revision}, which this taskfarm does not "
            f"know: its newest is {_current()}. A later taskfarm upgraded the database: run "
            "that one, or restore a backup from before the upgrade"
        )
    return SchemaMismatch(
        f"the database's schema is at version {found}, older than the version {_current()} "
        "this taskfarm uses: back the database up, then run `taskfarm db upgrade`"
    )


def _version(revision: str) -> SchemaVersion | None:
    """The version a revision of these migrations is, None for one they do not have."""
    try:
        script = _history().get_revision(revision)
    except alembic.util.CommandError:
        return None
    if script is None:
        return None
    return SchemaVersion(revision=script.revision, description=script.doc)


def _current() -> SchemaVersion:
    head = _history().get_current_head()
    version = None if head is None else _version(head)
    assert version is not None, "the migrations have one head"
    return version


@functools.cache
def _history() -> ScriptDirectory:
    return ScriptDirectory.from_config(_config())


def _config(connection: sa.Connection | None = None) -> Config:
    # No alembic.ini: `migrations/env.py` runs on the connection handed over here.
    config = Config()
    config.set_main_option("script_location", _MIGRATIONS)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _in_schema_transaction(engine: sa.Engine, work: Callable[[sa.Connection], T]) -> T:
    try:
        with engine.connect() as connection, foreign_keys_off(connection):
            connection.execution_options(**{WRITES: True})
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
                result = work(connection)
                _check_references(connection)
            return result
    except sa.exc.SQLAlchemyError as error:
        raise storage_error(error) from error
    except alembic.util.CommandError as error:
        raise StorageError(f"the schema could not be upgraded: {error}") from error


def _check_references(connection: sa.Connection) -> None:
    # SQLite checked no foreign key while tables were rebuilt; make sure none broke.
    if connection.dialect.name != "sqlite":
        return
    if connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
        raise StorageError(
            "upgrading the schema would leave rows referring to rows that do not exist "
            "(`PRAGMA foreign_key_check` in sqlite3 lists them); nothing was changed"
        )
