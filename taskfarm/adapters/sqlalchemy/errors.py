"""Driver errors in the words of the domain: nothing from SQLAlchemy or a driver leaks above."""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.domain import StorageError

# PostgreSQL aborts one of two transactions that wait on each other (40P01) or that cannot be
# serialised (40001); run again from the start, the survivor's work is visible and it succeeds.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


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
    first_line = str(reason).strip().partition("\n")[0]
    return StorageError(f"the database failed: {first_line or type(reason).__name__}")
