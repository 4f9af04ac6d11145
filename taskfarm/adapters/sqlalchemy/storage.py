"""One SQLite or PostgreSQL database behind the `Storage` port."""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy import schema
from taskfarm.adapters.sqlalchemy.accounts import SqlKeyStore, SqlUserStore, SqlWorkerStore
from taskfarm.adapters.sqlalchemy.credentials import SqlLoginFailureStore, SqlTokenStore
from taskfarm.adapters.sqlalchemy.engine import create_engine
from taskfarm.adapters.sqlalchemy.pg_loop_claims import PgLoopClaims
from taskfarm.adapters.sqlalchemy.run_store import SqlRunStore
from taskfarm.adapters.sqlalchemy.transactions import Transactions
from taskfarm.domain import SchemaUpgrade


class SqlStorage:
    """Everything in one SQL database that many server processes may share."""

    def __init__(self, engine: sa.Engine) -> None:
        self._engine = engine
        self._transactions = Transactions(engine)
        self._loop_claims = PgLoopClaims(engine) if engine.dialect.name == "postgresql" else None
        self.runs = SqlRunStore(self._transactions, self._loop_claims)
        self.workers = SqlWorkerStore(self._transactions)
        self.users = SqlUserStore(self._transactions)
        self.keys = SqlKeyStore(self._transactions)
        self.tokens = SqlTokenStore(self._transactions)
        self.logins = SqlLoginFailureStore(self._transactions)

    @classmethod
    def from_url(cls, url: str) -> SqlStorage:
        """`sqlite:///path` or `postgresql://user@host/db` (`postgres://` too), query included."""
        return cls(create_engine(url))

    def create_schema(self) -> None:
        schema.create_schema(self._engine)

    def upgrade_schema(self) -> SchemaUpgrade:
        return schema.upgrade_schema(self._engine)

    def ping(self) -> None:
        self._transactions.read(_select_one)

    async def leave_loop(self) -> None:
        if self._loop_claims is not None:
            await self._loop_claims.leave()

    def close(self) -> None:
        self._engine.dispose()


def _select_one(connection: sa.Connection) -> None:
    connection.execute(sa.text("SELECT 1"))
