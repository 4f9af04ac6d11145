"""From a database URL to an engine set up for many server processes sharing one database."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import make_url

from taskfarm.domain import StorageError

#: An execution option: the transaction about to begin will write.
WRITES = "taskfarm_writes"

#: How long an SQLite writer waits for another to finish before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000

#: libpq settings for PostgreSQL connections whose URL does not choose its own. When the
#: database's host dies or the network between goes silent (no reset, so TCP would retry for
#: many minutes), a request waiting on the database fails after 30 s; idle connections are
#: probed, so that dead ones are found, and firewalls keep the live ones.
DEAD_PEER_SETTINGS = {
    "tcp_user_timeout": "30000",
    "keepalives": "1",
    "keepalives_idle": "30",
    "keepalives_interval": "10",
    "keepalives_count": "3",
}


def create_engine(url: str) -> sa.Engine:
    try:
        parsed = make_url(url)
    except sa.exc.ArgumentError as error:
        raise StorageError(f"{url!r} is not a database URL") from error
    backend = parsed.get_backend_name()
    if backend in {"postgres", "postgresql"}:
        return _postgresql_engine(parsed)
    if backend == "sqlite":
        return _sqlite_engine(parsed)
    raise StorageError(f"taskfarm stores its data in SQLite or PostgreSQL, not {backend!r}")


#: A query parameter of the URL for psycopg rather than libpq: after how many runs of a
#: statement a connection prepares it (psycopg's default: 5), or `none` never to. A pooler
#: that hands each transaction another server connection (PgBouncer before 1.21 in
#: transaction mode) cannot keep prepared statements: its URLs say `prepare_threshold=none`.
PREPARE_THRESHOLD = "prepare_threshold"


def psycopg_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments SQLAlchemy gives psycopg from a URL, `PREPARE_THRESHOLD` read as
    psycopg wants it; raises StorageError for a value it cannot take."""
    given = options.get(PREPARE_THRESHOLD)
    if not isinstance(given, str):
        return dict(options)
    if given.lower() == "none":
        threshold = None
    elif given.isdigit():
        threshold = int(given)
    else:
        raise StorageError(f"{PREPARE_THRESHOLD} must be a whole number or none, not {given!r}")
    return {**options, PREPARE_THRESHOLD: threshold}


def _postgresql_engine(url: sa.URL) -> sa.Engine:
    # SQLAlchemy dropped the `postgres` alias and defaults to psycopg2; taskfarm ships psycopg 3.
    # Query parameters (`options=-csearch_path=...`, `sslmode`...) go on to the driver as they are.
    driver = url.drivername.partition("+")[2] or "psycopg"
    # In the URL, so that the event loop's connections (`PgLoopClaims`) have them too.
    defaults = {name: value for name, value in DEAD_PEER_SETTINGS.items() if name not in url.query}
    url = url.update_query_dict(defaults).set(drivername=f"postgresql+{driver}")
    psycopg_options(dict(url.query))  # refused now, not at the first connection
    # No `pool_pre_ping`: `Transactions` replaces a connection found dead instead.
    engine = sa.create_engine(url)
    sa.event.listen(engine, "do_connect", _read_psycopg_options)
    return engine


def _read_psycopg_options(
    dialect: object, record: object, arguments: object, options: dict[str, Any]
) -> None:
    options.update(psycopg_options(options))


def _sqlite_engine(url: sa.URL) -> sa.Engine:
    if url.database in {None, "", ":memory:"}:
        # Each connection would get a database of its own.
        raise StorageError("an in-memory SQLite database cannot be shared: use memory:// instead")
    engine = sa.create_engine(url)
    sa.event.listen(engine, "connect", _set_up_sqlite_connection)
    sa.event.listen(engine, "begin", _begin_sqlite_transaction)
    return engine


def _set_up_sqlite_connection(dbapi_connection: Any, _record: object) -> None:
    # sqlite3 would otherwise emit its own deferred BEGIN; `_begin_sqlite_transaction` does it.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        # WAL lets readers go on while one process writes. The mode is kept in the file, and
        # switching takes an exclusive lock: only switch when it is not on yet.
        if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
        # In WAL mode, NORMAL syncs at checkpoints rather than at every commit: a crash of the
        # server loses nothing, a power cut may lose the last commits (claims that then go
        # out again, progress to report again) but never corrupts the database.
        cursor.execute("PRAGMA synchronous = NORMAL")
    finally:
        cursor.close()


def _begin_sqlite_transaction(connection: sa.Connection) -> None:
    # A deferred transaction that reads, then writes, fails at once (busy timeout or not) when
    # another process wrote in between. IMMEDIATE takes the write lock up front, waiting up to
    # the busy timeout for it: writers run one at a time, each on what the last one committed.
    # Straight to the driver: SQLAlchemy's execution machinery would cost more than the BEGIN.
    driver_connection = connection.connection.driver_connection
    assert driver_connection is not None
    if connection.get_execution_options().get(WRITES, False):
        driver_connection.execute("BEGIN IMMEDIATE")
    else:
        driver_connection.execute("BEGIN")


@contextmanager
def foreign_keys_off(connection: sa.Connection) -> Iterator[None]:
    """SQLite enforces no foreign key in the transactions begun inside, for migrations.

    A migration rebuilds an SQLite table to change a column: it copies the table, drops the
    old one and renames the copy. With foreign keys on, dropping `runs` would delete every
    task (ON DELETE CASCADE). SQLite ignores the pragma inside a transaction, so it is set
    before BEGIN; the connection is then discarded rather than handed to a request without
    its foreign keys. PostgreSQL alters tables in place: nothing to do there.
    """
    if connection.dialect.name != "sqlite":
        yield
        return
    cursor = connection.connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys = OFF")
    finally:
        cursor.close()
    try:
        yield
    finally:
        connection.invalidate()
