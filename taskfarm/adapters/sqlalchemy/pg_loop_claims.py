"""PostgreSQL claims awaited on the event loop with psycopg's asyncio connections, with no
worker thread: the two claim statements of `pg_claims`, sent by the
driver itself.

A trip to a worker thread and back, and SQLAlchemy's work around the one statement, cost a
claim request more CPU than PostgreSQL's. Connections belong to the event loop that opened
them: each loop gets a pool of its own, closed by `leave`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import psycopg
import psycopg_pool
import sqlalchemy as sa
from cachetools import TTLCache
from psycopg.rows import namedtuple_row

from taskfarm.adapters.sqlalchemy.engine import psycopg_options
from taskfarm.adapters.sqlalchemy.errors import RETRYABLE_SQLSTATES, database_failed
from taskfarm.adapters.sqlalchemy.retries import Attempts
from taskfarm.adapters.sqlalchemy.statements import pg_claims
from taskfarm.adapters.sqlalchemy.statements.pg_claims import Handed
from taskfarm.domain import StorageError, Task, TaskState, Wanted

#: Connections per event loop: one per run whose claims are on their way at once.
MAX_CONNECTIONS = 8
#: How long a claim waits for a connection when none can be made: a database that is down
#: must fail a request in seconds (a 503), not hang it.
CONNECTION_TIMEOUT_SECONDS = 5.0
#: How long a claim statement may take before it fails (a 503): PostgreSQL stopped answering,
#: or its host died without closing the connections, which TCP would wait out for minutes.
#: Long enough for claims that wait for the run's row while a large run is restarted.
STATEMENT_TIMEOUT_SECONDS = 30.0
#: Once the frontier statement found that a run has requeued tasks or tasks stored out of
#: order, the run's claims go straight to the full statement for this long: one statement
#: spent in vain per run and event loop, at most, in that time.
FULL_CLAIMS_SECONDS = 1.0
#: Runs remembered as needing the full statement, per event loop.
MAX_FULL_RUNS = 1024

_Pool = psycopg_pool.AsyncConnectionPool[Any]


@attrs.frozen
class _OnLoop:
    """What the claims of one event loop share: its pool (every claim waits for the same
    opening, however many come at once), and the runs lately found to need the full
    statement."""

    opening: asyncio.Task[_Pool]
    full_runs: TTLCache[str, bool] = attrs.field(
        factory=lambda: TTLCache(MAX_FULL_RUNS, FULL_CLAIMS_SECONDS)
    )


class PgLoopClaims:
    """The claim statement through a pool of asyncio connections of the running loop."""

    def __init__(self, engine: sa.Engine) -> None:
        # Exactly what SQLAlchemy hands psycopg for the engine's URL, query included.
        arguments, options = engine.dialect.create_connect_args(engine.url)
        self._options = psycopg_options(options)
        self._conninfo = psycopg.conninfo.make_conninfo(*arguments)
        self._full_sql = pg_claims.sql(engine.dialect)
        self._frontier_sql = pg_claims.frontier_sql(engine.dialect)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _OnLoop] = (
            weakref.WeakKeyDictionary()
        )

    async def claim_each(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        """The tasks of each claim, as if each came in turn: what a claim still wants after
        a statement (`Handed.still_wanted`) goes in the next one."""
        tasks: list[list[Task]] = [[] for _ in wanted]
        pending = list(enumerate(wanted))
        while pending:
            asked = [one for _, one in pending]
            handed = await self._execute(run_uuid, asked, now)
            for (i, _), more in zip(pending, handed.tasks, strict=True):
                tasks[i] += more
            still_wanted = handed.still_wanted(asked)
            pending = [
                (i, rest)
                for (i, _), rest in zip(pending, still_wanted, strict=True)
                if rest is not None
            ]
        return tasks

    async def _execute(self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime) -> Handed:
        parameters: Mapping[str, Any] = {
            **pg_claims.parameters(run_uuid, wanted, now),
            "computing": TaskState.COMPUTING.value,
        }
        on_loop = self._on_loop()
        pool = await on_loop.opening
        if run_uuid not in on_loop.full_runs:
            rows = await self._rows(pool, self._frontier_sql, parameters)
            if not pg_claims.frontier_refused(rows):
                return pg_claims.handed(run_uuid, wanted, rows, now)
            on_loop.full_runs[run_uuid] = True
        return pg_claims.handed(
            run_uuid, wanted, await self._rows(pool, self._full_sql, parameters), now
        )

    async def _rows(self, pool: _Pool, sql: str, parameters: Mapping[str, Any]) -> list[Any]:
        """The rows of one statement, run again while PostgreSQL reports a conflict, and once
        more on a new connection if the one it got turned out to be dead."""
        attempts = Attempts()
        for delay in attempts.delays():
            if delay:
                await asyncio.sleep(delay)
            try:
                # Cancelled on time, psycopg asks the server to cancel the statement, and
                # closes the connection when that does not end it within 5 s.
                async with asyncio.timeout(STATEMENT_TIMEOUT_SECONDS):
                    async with pool.connection() as connection:
                        cursor = await connection.execute(sql, parameters)
                        rows: list[Any] = await cursor.fetchall()
                        return rows
            except TimeoutError as error:
                raise StorageError(
                    f"the database did not answer within {STATEMENT_TIMEOUT_SECONDS:g} s"
                ) from error
            except psycopg_pool.PoolTimeout as error:
                # No connection could be made, or all were busy, for the whole timeout.
                raise database_failed(error) from error
            except psycopg.Error as error:
                lost = _lost_connection(error)
                if not attempts.again(
                    lost_connection=lost, conflict=error.sqlstate in RETRYABLE_SQLSTATES
                ):
                    raise database_failed(error) from error
                if lost:
                    # The server restarted, or a proxy dropped idle connections: the pool
                    # drops this one as it gets it back, `check` finds the others, and new
                    # ones may work.
                    await pool.check()
        raise AssertionError("Attempts.delays raises after the last attempt")

    def _on_loop(self) -> _OnLoop:
        loop = asyncio.get_running_loop()
        on_loop = self._loops.get(loop)
        if on_loop is None:
            on_loop = self._loops[loop] = _OnLoop(loop.create_task(self._open_pool()))
        return on_loop

    async def _open_pool(self) -> _Pool:
        pool: _Pool = psycopg_pool.AsyncConnectionPool(
            self._conninfo,
            kwargs={**self._options, "autocommit": True, "row_factory": namedtuple_row},
            min_size=1,
            max_size=MAX_CONNECTIONS,
            timeout=CONNECTION_TIMEOUT_SECONDS,
            open=False,
        )
        await pool.open()
        return pool

    async def leave(self) -> None:
        """Closes the pool of the running event loop, if it has one."""
        on_loop = self._loops.pop(asyncio.get_running_loop(), None)
        if on_loop is not None:
            await (await on_loop.opening).close()


def _lost_connection(error: psycopg.Error) -> bool:
    """The server went away, or closed the connection (a restart, a proxy's idle timeout)."""
    return isinstance(error, psycopg.OperationalError) and (
        error.sqlstate is None or error.sqlstate.startswith(("08", "57P"))
    )
