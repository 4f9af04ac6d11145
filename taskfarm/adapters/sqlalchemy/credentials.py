"""Worker tokens and failed logins: small tables, plain statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from taskfarm.adapters.sqlalchemy.statements.upserts import insert_if_absent
from taskfarm.adapters.sqlalchemy.tables import login_failures, worker_tokens
from taskfarm.adapters.sqlalchemy.transactions import Transactions
from taskfarm.domain import Conflict, FailedLogins, TokenNotFound, WorkerToken

if TYPE_CHECKING:
    from taskfarm.adapters.sqlalchemy.rows import AnyRow

_TOKEN_COLUMNS = (
    worker_tokens.c.id,
    worker_tokens.c.run_uuid,
    worker_tokens.c.owner,
    worker_tokens.c.created,
    worker_tokens.c.expires,
    worker_tokens.c.name,
)
_BY_DIGEST = sa.select(*_TOKEN_COLUMNS).where(worker_tokens.c.digest == sa.bindparam("digest"))


def _token(row: AnyRow) -> WorkerToken:
    return WorkerToken(
        id=row.id,
        run=row.run_uuid,
        owner=row.owner,
        created=row.created,
        expires=row.expires,
        name=row.name,
    )


class SqlTokenStore:
    """Worker tokens, one row each, found by the digest of the token."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def add_token(self, token: WorkerToken, digest: str) -> None:
        values = {
            "id": token.id,
            "digest": digest,
            "name": token.name,
            "run_uuid": token.run,
            "owner": token.owner,
            "created": token.created,
            "expires": token.expires,
        }

        def work(connection: sa.Connection) -> None:
            statement = insert_if_absent(connection.dialect.name, worker_tokens, values)
            if connection.execute(statement.returning(worker_tokens.c.id)).first() is None:
                raise Conflict(f"there is already a token {token.id!r}")

        self._transactions.write(work)

    def token_by_digest(self, digest: str) -> WorkerToken | None:
        row = self._transactions.read(lambda c: c.execute(_BY_DIGEST, {"digest": digest}).first())
        return None if row is None else _token(row)

    def list_tokens(self, owner: str | None = None) -> Sequence[WorkerToken]:
        listed = sa.select(*_TOKEN_COLUMNS).order_by(worker_tokens.c.created, worker_tokens.c.id)
        if owner is not None:
            listed = listed.where(worker_tokens.c.owner == owner)
        return [_token(row) for row in self._transactions.read(lambda c: c.execute(listed).all())]

    def revoke_token(self, token_id: str) -> WorkerToken:
        statement = (
            sa.delete(worker_tokens)
            .where(worker_tokens.c.id == token_id)
            .returning(*_TOKEN_COLUMNS)
        )
        row = self._transactions.write(lambda c: c.execute(statement).first())
        if row is None:
            raise TokenNotFound(token_id)
        return _token(row)


class SqlLoginFailureStore:
    """Failed logins, one row per username or address, with the start of its window."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def failed_logins(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> list[FailedLogins | None]:
        selected = sa.select(
            login_failures.c.counted_by, login_failures.c.failures, login_failures.c.since
        ).where(login_failures.c.counted_by.in_(counted_by), login_failures.c.since > now - window)
        found = {
            key: FailedLogins(failures, since)
            for key, failures, since in self._transactions.read(lambda c: c.execute(selected).all())
        }
        return [found.get(key) for key in counted_by]

    def count_failed_login(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> None:
        def work(connection: sa.Connection) -> None:
            insert = postgresql.insert if connection.dialect.name == "postgresql" else sqlite.insert
            statement = insert(login_failures)
            # One statement per key: a window that ended starts again at `now`.
            ended = login_failures.c.since <= now - window
            upsert = statement.on_conflict_do_update(
                index_elements=[login_failures.c.counted_by],
                set_={
                    "failures": sa.case((ended, 1), else_=login_failures.c.failures + 1),
                    "since": sa.case((ended, now), else_=login_failures.c.since),
                },
            )
            connection.execute(
                upsert, [{"counted_by": key, "since": now, "failures": 1} for key in counted_by]
            )

        self._transactions.write(work)

    def forget_failed_logins(self, counted_by: str) -> None:
        statement = sa.delete(login_failures).where(login_failures.c.counted_by == counted_by)
        self._transactions.write(lambda c: c.execute(statement))
