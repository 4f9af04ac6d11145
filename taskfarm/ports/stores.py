"""Where runs, tasks, workers and users live. Every method is one atomic operation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Protocol

from taskfarm.domain import Run, Task, TaskChange, User, Worker, WorkerRegistration


class RunStore(Protocol):
    """Runs and their tasks. Only tasks someone has touched are stored."""

    def create_run(self, uuid: str, num_tasks: int) -> Run:
        """Stores a run in O(1), whatever its number of tasks; Conflict if the uuid is taken."""
        ...

    def list_runs(self) -> Sequence[Run]:
        """Every run, in the order they were created."""
        ...

    def get_run(self, uuid: str) -> Run:
        """The run with its counters, in O(1); raises RunNotFound."""
        ...

    def delete_run(self, uuid: str) -> None:
        """Deletes the run and all its tasks; raises RunNotFound."""
        ...

    def claim(self, run_uuid: str, worker_uuid: str) -> Task | None:
        """Hands the next task (by `next_claim`) to the worker, atomically: no task is ever
        handed to two concurrent callers. None when nothing is left. Raises RunNotFound."""
        ...

    def get_task(self, run_uuid: str, index: int) -> Task:
        """The task, untouched or not; raises RunNotFound or TaskNotFound."""
        ...

    def update_task(self, run_uuid: str, index: int, change: TaskChange) -> Task:
        """Applies `Task.changed` and moves the run's counters, atomically."""
        ...

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        """Applies `Task.restarted` to every stored task of the run, atomically."""
        ...


class WorkerStore(Protocol):
    """The workers that registered."""

    def register(self, registration: WorkerRegistration, now: dt.datetime) -> Worker:
        """Stores a new worker; registering the same worker again returns it unchanged.
        Raises Conflict when the uuid belongs to a worker with another hostname or pid."""
        ...

    def get_worker(self, uuid: str) -> Worker:
        """Raises WorkerNotFound."""
        ...


class UserStore(Protocol):
    """The users and their password hashes."""

    def add_user(self, username: str, password_hash: str, token_stamp: str) -> User:
        """Raises Conflict when the name is taken."""
        ...

    def get_user(self, username: str) -> User:
        """Raises UserNotFound."""
        ...

    def list_users(self) -> Sequence[User]: ...

    def delete_user(self, username: str) -> None:
        """Raises UserNotFound."""
        ...

    def set_password(self, username: str, password_hash: str, token_stamp: str) -> None:
        """Raises UserNotFound."""
        ...


class KeyStore(Protocol):
    """Keeps the server's token signing key."""

    def signing_key(self, generate: Callable[[], bytes]) -> bytes:
        """The stored key; on first use stores `generate()`, atomically, so that every
        server process sharing the store signs with the same key."""
        ...


class Storage(Protocol):
    """One backend, everything the service needs from it."""

    @property
    def runs(self) -> RunStore: ...

    @property
    def workers(self) -> WorkerStore: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def keys(self) -> KeyStore: ...

    def create_schema(self) -> None:
        """Creates whatever the backend needs; does nothing when it is already there."""
        ...

    def close(self) -> None: ...
