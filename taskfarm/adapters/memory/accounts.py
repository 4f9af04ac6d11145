from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable, Sequence

import attrs

from taskfarm.domain import Conflict, User, UserNotFound, Worker, WorkerNotFound, WorkerRegistration


class MemoryWorkerStore:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._workers: dict[str, Worker] = {}

    def register(
        self, registration: WorkerRegistration, now: dt.datetime, owner: str | None = None
    ) -> Worker:
        with self._lock:
            known = self._workers.get(registration.uuid)
            if known is not None:
                if known.registration != registration:
                    raise Conflict(
                        f"worker {registration.uuid!r} is registered with another hostname or pid"
                    )
                return known
            worker = Worker(
                id=len(self._workers) + 1,
                uuid=registration.uuid,
                hostname=registration.hostname,
                pid=registration.pid,
                started=now,
                last_seen=now,
                owner=owner,
            )
            self._workers[worker.uuid] = worker
            return worker

    def get_worker(self, uuid: str) -> Worker:
        with self._lock:
            return self._get(uuid)

    def seen(self, uuid: str, now: dt.datetime) -> Worker:
        with self._lock:
            worker = attrs.evolve(self._get(uuid), last_seen=now)
            self._workers[uuid] = worker
            return worker

    def list_workers(self, owner: str | None = None) -> Sequence[Worker]:
        with self._lock:
            workers = list(self._workers.values())
        return [worker for worker in workers if owner is None or worker.owner == owner]

    def _get(self, uuid: str) -> Worker:
        try:
            return self._workers[uuid]
        except KeyError:
            raise WorkerNotFound(uuid) from None


class MemoryUserStore:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._users: dict[str, User] = {}
        self._last_id = 0

    def add_user(
        self, username: str, password_hash: str, token_stamp: str, *, admin: bool = False
    ) -> User:
        with self._lock:
            if username in self._users:
                raise Conflict(f"there is already a user named {username!r}")
            self._last_id += 1
            user = User(self._last_id, username, password_hash, token_stamp, admin)
            self._users[username] = user
            return user

    def get_user(self, username: str) -> User:
        with self._lock:
            return self._get(username)

    def list_users(self) -> Sequence[User]:
        with self._lock:
            return list(self._users.values())

    def delete_user(self, username: str) -> None:
        with self._lock:
            self._get(username)
            del self._users[username]

    def set_password(self, username: str, password_hash: str, token_stamp: str) -> None:
        with self._lock:
            user = self._get(username)
            self._users[username] = attrs.evolve(
                user, password_hash=password_hash, token_stamp=token_stamp
            )

    def _get(self, username: str) -> User:
        try:
            return self._users[username]
        except KeyError:
            raise UserNotFound(username) from None


class MemoryKeyStore:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._key: bytes | None = None

    def signing_key(self, generate: Callable[[], bytes]) -> bytes:
        with self._lock:
            if self._key is None:
                self._key = generate()
            return self._key
