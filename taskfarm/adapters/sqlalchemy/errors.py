"""Driver errors in the words of the domain: nothing from SQLAlchemy or a driver leaks above."""

from __future__ import annotations

import sqlite3

import sqlalchemy as sa

from taskfarm.domain import StorageError, StorageFull

# PostgreSQL aborts one of two transactions that wait on each other (40P01) or that cannot be
# serialised (40001); run again from the start, the survivor's work is visible and it succeeds.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


#: PostgreSQL's `disk_full`: it could not extend a file or write its log.
DISK_FULL_SQLSTATE = "53100"


def _disk_full(reason: BaseException) -> bool:
    # SQLite rolls back the transaction whose write found the disk full (SQLITE_FULL).
    return (
        getattr(reason, "sqlstate", None) == DISK_FULL_SQLSTATE
        or getattr(reason, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    )


def is_retryable(error: sa.exc.SQLAlchemyError) -> bool:
    if not isinstance(error, sa.exc.DBAPIError):
        return False
    return getattr(error.orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def is_disconnect(error: sa.exc.SQLAlchemyError) -> bool:
    """The connection turned out to be dead (the server restarted, a proxy dropped it): the
    pool has discarded it, and a new one may well work."""
    return isinstance(error, sa.exc.DBAPIError) and error.connection_invalidated


def storage_error(error: sa.exc.SQLAlchemyError) -> StorageError:
    if isinstance(error, sa.exc.OperationalError) and "database is locked" in str(error.orig):
        return StorageError(
            "the SQLite database stayed locked by other writers for longer than the busy "
            "timeout; try again, or move to PostgreSQL for this many writers"
        )
    driver_error = error.orig if isinstance(error, sa.exc.DBAPIError) else None
    return database_failed(driver_error or error)


def database_failed(reason: BaseException) -> StorageError:
    """The first line of what the driver said: the rest is often the statement itself."""
    if _disk_full(reason):
        return StorageFull(
            "the database's disk is full: nothing of this request was written; free space on "
            "it and try again"
        )
    first_line = str(reason).strip().partition("\n")[0]
    return StorageError(f"the database failed: {first_line or type(reason).__name__}")
