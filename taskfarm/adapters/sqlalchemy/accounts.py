"""Workers, users and the signing key: small tables, plain statements."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import sqlalchemy as sa

from taskfarm.adapters.sqlalchemy.rows import (
    USER_COLUMNS,
    WORKER_COLUMNS,
    user_from_row,
    worker_from_row,
)
from taskfarm.adapters.sqlalchemy.statements.upserts import insert_if_absent
from taskfarm.adapters.sqlalchemy.tables import SIGNING_KEY, settings, users, workers
from taskfarm.adapters.sqlalchemy.transactions import Transactions
from taskfarm.domain import Conflict, User, UserNotFound, Worker, WorkerNotFound, WorkerRegistration


class SqlWorkerStore:
    """The workers that registered, one row each, with when each was last heard from."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def register(
        self, registration: WorkerRegistration, now: dt.datetime, owner: str | None = None
    ) -> Worker:
        def work(connection: sa.Connection) -> Worker:
            # Insert-if-absent, then read back: a worker that registers twice at once (a
            # retried request) gets the same row both times.
            values = {
                "uuid": registration.uuid,
                "hostname": registration.hostname,
                "pid": registration.pid,
                "started": now,
                "last_seen": now,
                "owner": owner,
            }
            connection.execute(insert_if_absent(connection.dialect.name, workers, values))
            worker = worker_from_row(connection.execute(_worker_named(registration.uuid)).one())
            if worker.registration != registration:
                raise Conflict(
                    f"worker {registration.uuid!r} is registered with another hostname or pid"
                )
            return worker

        return self._transactions.write(work)

    def get_worker(self, uuid: str) -> Worker:
        row = self._transactions.read(lambda c: c.execute(_worker_named(uuid)).first())
        if row is None:
            raise WorkerNotFound(uuid)
        return worker_from_row(row)

    def seen(self, uuid: str, now: dt.datetime) -> Worker:
        statement = (
            sa.update(workers)
            .where(workers.c.uuid == uuid)
            .values(last_seen=now)
            .returning(*WORKER_COLUMNS)
        )
        row = self._transactions.write(lambda c: c.execute(statement).first())
        if row is None:
            raise WorkerNotFound(uuid)
        return worker_from_row(row)

    def list_workers(self, owner: str | None = None) -> Sequence[Worker]:
        listed = sa.select(*WORKER_COLUMNS).order_by(workers.c.id)
        if owner is not None:
            listed = listed.where(workers.c.owner == owner)
        rows = self._transactions.read(lambda c: c.execute(listed).all())
        return [worker_from_row(row) for row in rows]


def _worker_named(uuid: str) -> sa.Select[*tuple[Any, ...]]:
    return sa.select(*WORKER_COLUMNS).where(workers.c.uuid == uuid)


class SqlUserStore:
    """The users and their password hashes, one row each."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def add_user(
        self, username: str, password_hash: str, token_stamp: str, *, admin: bool = False
    ) -> User:
        def work(connection: sa.Connection) -> User:
            values = {
                "username": username,
                "password_hash": password_hash,
                "token_stamp": token_stamp,
                "admin": admin,
            }
            statement = insert_if_absent(connection.dialect.name, users, values).returning(
                *USER_COLUMNS
            )
            row = connection.execute(statement).first()
            if row is None:
                raise Conflict(f"there is already a user named {username!r}")
            return user_from_row(row)

        return self._transactions.write(work)

    def get_user(self, username: str) -> User:
        row = self._transactions.read(
            lambda c: c.execute(
                sa.select(*USER_COLUMNS).where(users.c.username == username)
            ).first()
        )
        if row is None:
            raise UserNotFound(username)
        return user_from_row(row)

    def list_users(self) -> Sequence[User]:
        rows = self._transactions.read(
            lambda c: c.execute(sa.select(*USER_COLUMNS).order_by(users.c.id)).all()
        )
        return [user_from_row(row) for row in rows]

    def delete_user(self, username: str) -> None:
        self._change(username, sa.delete(users))

    def set_password(self, username: str, password_hash: str, token_stamp: str) -> None:
        self._change(
            username, sa.update(users).values(password_hash=password_hash, token_stamp=token_stamp)
        )

    def _change(self, username: str, statement: sa.Delete | sa.Update) -> None:
        named = statement.where(users.c.username == username)
        if self._transactions.write(lambda c: c.execute(named).rowcount) == 0:
            raise UserNotFound(username)


class SqlKeyStore:
    """The token signing key, in the `settings` table."""

    def __init__(self, transactions: Transactions) -> None:
        self._transactions = transactions

    def signing_key(self, generate: Callable[[], bytes]) -> bytes:
        stored = self._transactions.read(lambda c: c.execute(_SIGNING_KEY).scalar_one_or_none())
        if stored is not None:
            return bytes(stored)
        key = generate()

        def work(connection: sa.Connection) -> bytes:
            # Several processes starting at once each generate a key: the first one stored wins,
            # and they all read back that one.
            values = {"name": SIGNING_KEY, "value": key}
            connection.execute(insert_if_absent(connection.dialect.name, settings, values))
            return bytes(connection.execute(_SIGNING_KEY).scalar_one())

        return self._transactions.write(work)


_SIGNING_KEY = sa.select(settings.c.value).where(settings.c.name == SIGNING_KEY)
