"""Each store operation as one short transaction, run again when the database asks for it."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.engine import WRITES
from taskfarm.adapters.sqlalchemy.errors import is_disconnect, is_retryable, storage_error
from taskfarm.adapters.sqlalchemy.retries import Attempts
from taskfarm.adapters.sqlalchemy.writer_turns import writer_turns

T = TypeVar("T")


class TryAgain(Exception):
    """Raised inside a transaction to roll it back and run it again from the start."""


class Transactions:
    """Runs functions of a connection each in a transaction of its own.

    Domain errors raised inside roll the transaction back and go up unchanged; database
    errors become `StorageError`, after more `Attempts` when they are transient. A pooled
    connection found dead is replaced once: the pool does not test connections before each
    transaction, which would cost every transaction a round trip.
    """

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._writers = writer_turns(engine)

    @property
    def dialect(self) -> str:
        return self._engine.dialect.name

    def read(self, work: Callable[[sa.Connection], T]) -> T:
        return self._run(work, writes=False)

    def write(self, work: Callable[[sa.Connection], T]) -> T:
        return self._run(work, writes=True)

    def statement(self, work: Callable[[sa.Connection], T]) -> T:
        """`work` that is one statement, committed as it runs: no BEGIN and no COMMIT, two
        round trips fewer. PostgreSQL only: on SQLite writers take turns in transactions."""
        assert self.dialect == "postgresql", "one statement in autocommit is for PostgreSQL"
        return self._run(work, writes=True, autocommit=True)

    def _run(
        self, work: Callable[[sa.Connection], T], *, writes: bool, autocommit: bool = False
    ) -> T:
        attempts = Attempts()
        for delay in attempts.delays():
            if delay:
                time.sleep(delay)
            try:
                with (
                    self._writers.turn() if writes else contextlib.nullcontext(),
                    self._engine.connect() as connection,
                ):
                    if autocommit:
                        connection.execution_options(isolation_level="AUTOCOMMIT")
                        return work(connection)
                    connection.execution_options(**{WRITES: writes})
                    with connection.begin():
                        return work(connection)
            except TryAgain:
                continue
            except sa.exc.SQLAlchemyError as error:
                if not attempts.again(
                    lost_connection=is_disconnect(error), conflict=is_retryable(error)
                ):
                    raise storage_error(error) from error
        raise AssertionError("Attempts.delays raises after the last attempt")
