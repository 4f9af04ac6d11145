"""One SQLite or PostgreSQL database behind the `Storage` port."""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.accounts import SqlKeyStore, SqlUserStore, SqlWorkerStore
from taskfarm.adapters.sqlalchemy.engine import create_engine
from taskfarm.adapters.sqlalchemy.run_store import SqlRunStore
from taskfarm.adapters.sqlalchemy.tables import metadata
from taskfarm.adapters.sqlalchemy.transactions import Transactions
from taskfarm.domain import StorageError

# Any fixed number: PostgreSQL advisory locks are named by one.
_SCHEMA_LOCK = 0x7461736B6661726D  # "taskfarm"


class SqlStorage:
    """Everything in one SQL database that many server processes may share."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._transactions = Transactions(engine)
        self.runs = SqlRunStore(self._transactions)
        self.workers = SqlWorkerStore(self._transactions)
        self.users = SqlUserStore(self._transactions)
        self.keys = SqlKeyStore(self._transactions)

    @classmethod
    def from_url(cls, url: str) -> SqlStorage:
        """`sqlite:///path` or `postgresql://user@host/db` (`postgres://` too), query included."""
        return cls(create_engine(url))

    def create_schema(self) -> None:
        self._transactions.write(_create_schema)

    def ping(self) -> None:
        self._transactions.read(_select_one)

    def close(self) -> None:
        self._engine.dispose()


def _select_one(connection: sa.Connection) -> None:
    connection.execute(sa.text("SELECT 1"))


def _create_schema(connection: sa.Connection) -> None:
    # Server processes starting together would otherwise all see a table missing and all
    # create it. SQLite's BEGIN IMMEDIATE already makes them take turns.
    if connection.dialect.name == "postgresql":
        connection.execute(sa.select(sa.func.pg_advisory_xact_lock(_SCHEMA_LOCK)))
    metadata.create_all(connection)
    _check_columns(connection)
    _create_indexes(connection)


def _check_columns(connection: sa.Connection) -> None:
    # `create_all` leaves a table that exists as it is. One made by an earlier taskfarm lacks
    # columns, and there is no migration yet: say so now, rather than fail on every request.
    inspector = sa.inspect(connection)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        missing = [column.name for column in table.columns if column.name not in present]
        if missing:
            raise StorageError(
                f"the table {table.name!r} has no column {', '.join(missing)}: the database "
                "was created by an earlier version of taskfarm, which this one cannot upgrade; "
                "point DATABASE_URL at a new database"
            )


def _create_indexes(connection: sa.Connection) -> None:
    # `create_all` makes the indexes of the tables it creates only: a database made by an
    # earlier taskfarm gets those added since here, once (on a large table, a server's first
    # start takes a while).
    for table in metadata.sorted_tables:
        for index in table.indexes:
            index.create(connection, checkfirst=True)
