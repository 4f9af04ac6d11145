from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, cast

from taskfarm.adapters.redis import keys
from taskfarm.adapters.redis.errors import storage_errors
from taskfarm.adapters.redis.scripts import Scripts
from taskfarm.domain import Conflict, User, UserNotFound, Worker, WorkerNotFound, WorkerRegistration


class RedisWorkerStore:
    """Workers as hashes, indexed by a sorted set in registration order, all under one hash
    tag."""

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    def register(
        self, registration: WorkerRegistration, now: dt.datetime, owner: str | None = None
    ) -> Worker:
        uuid = registration.uuid
        args = [uuid, registration.hostname, str(registration.pid), now.isoformat(), owner or ""]
        with storage_errors():
            stored = self._scripts.register_worker(
                keys=[keys.worker(uuid), keys.LAST_WORKER_ID, keys.WORKER_INDEX], args=args
            )
        worker = _worker(uuid, stored)
        if worker.registration != registration:
            raise Conflict(f"worker {uuid!r} is registered with another hostname or pid")
        return worker

    def get_worker(self, uuid: str) -> Worker:
        with storage_errors():
            stored = self._client.hmget(keys.worker(uuid), *_WORKER_FIELDS)
        if stored[0] is None:
            raise WorkerNotFound(uuid)
        return _worker(uuid, stored)

    def seen(self, uuid: str, now: dt.datetime) -> Worker:
        with storage_errors():
            stored = self._scripts.seen_worker(keys=[keys.worker(uuid)], args=[now.isoformat()])
        if not stored:
            raise WorkerNotFound(uuid)
        return _worker(uuid, stored)

    def list_workers(self, owner: str | None = None) -> Sequence[Worker]:
        with storage_errors():
            uuids = self._client.zrange(keys.WORKER_INDEX, 0, -1)
            pipeline = self._client.pipeline(transaction=False)
            for uuid in uuids:
                pipeline.hmget(keys.worker(uuid), *_WORKER_FIELDS)
            stored = pipeline.execute()
        workers = [
            _worker(uuid, fields)
            for uuid, fields in zip(uuids, stored, strict=True)
            if fields[0] is not None
        ]
        return [worker for worker in workers if owner is None or worker.owner == owner]


_WORKER_FIELDS = ("id", "hostname", "pid", "started", "last_seen", "owner")


def _worker(uuid: str, stored: Sequence[str | None]) -> Worker:
    # Every field but the owner is there: the id's presence was checked, and they go together.
    worker_id, hostname, pid, started, last_seen = cast("Sequence[str]", stored[:5])
    owner = stored[5]
    return Worker(
        id=int(worker_id),
        uuid=uuid,
        hostname=hostname,
        pid=int(pid),
        started=dt.datetime.fromisoformat(started),
        last_seen=dt.datetime.fromisoformat(last_seen),
        owner=owner or None,
    )


class RedisUserStore:
    """Users as hashes, indexed by a sorted set in creation order, all under one hash tag."""

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    def add_user(
        self, username: str, password_hash: str, token_stamp: str, *, admin: bool = False
    ) -> User:
        with storage_errors():
            user_id = self._scripts.add_user(
                keys=[keys.user(username), keys.USER_INDEX, keys.LAST_USER_ID],
                args=[username, password_hash, token_stamp, _flag(admin)],
            )
        if user_id is None:
            raise Conflict(f"there is already a user named {username!r}")
        return User(int(user_id), username, password_hash, token_stamp, admin)

    def get_user(self, username: str) -> User:
        with storage_errors():
            fields = self._client.hgetall(keys.user(username))
        if not fields:
            raise UserNotFound(username)
        return _user(username, fields)

    def list_users(self) -> Sequence[User]:
        with storage_errors():
            names = self._client.zrange(keys.USER_INDEX, 0, -1)
            pipeline = self._client.pipeline(transaction=False)
            for name in names:
                pipeline.hgetall(keys.user(name))
            hashes = pipeline.execute()
        return [_user(name, fields) for name, fields in zip(names, hashes, strict=True) if fields]

    def delete_user(self, username: str) -> None:
        with storage_errors():
            deleted = self._scripts.delete_user(
                keys=[keys.user(username), keys.USER_INDEX], args=[username]
            )
        if not deleted:
            raise UserNotFound(username)

    def set_password(self, username: str, password_hash: str, token_stamp: str) -> None:
        with storage_errors():
            changed = self._scripts.set_password(
                keys=[keys.user(username)], args=[password_hash, token_stamp]
            )
        if not changed:
            raise UserNotFound(username)


def _user(username: str, fields: dict[str, str]) -> User:
    return User(
        int(fields["id"]),
        username,
        fields["password_hash"],
        fields["token_stamp"],
        # Users stored before users had roles are admins: an upgrade changes nobody's access.
        fields.get("admin", _flag(True)) == _flag(True),
    )


def _flag(value: bool) -> str:
    return "1" if value else "0"


class RedisKeyStore:
    def __init__(self, client: Any) -> None:
        self._client = client

    def signing_key(self, generate: Callable[[], bytes]) -> bytes:
        with storage_errors():
            stored = self._client.get(keys.SIGNING_KEY)
            if stored is None:
                # SET NX makes the first process's key everyone's.
                self._client.set(keys.SIGNING_KEY, generate().hex(), nx=True)
                stored = self._client.get(keys.SIGNING_KEY)
        return bytes.fromhex(stored)
