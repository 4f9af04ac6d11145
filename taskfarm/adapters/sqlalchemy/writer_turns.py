"""SQLite writers take turns through locks that wake the next writer at once.

SQLite's own wait for its write lock polls: its busy handler sleeps 1, 2, 5... up to 100 ms
between tries, so with many writers most of them sleep while the database is free, which caps
claims per second and makes latency jump. Here a writer first takes a thread lock (against the
other writers of its process), then an exclusive `flock` on a file beside the database
(against other processes); the kernel and the thread lock hand each over as soon as it is
released. BEGIN IMMEDIATE then finds the database free, unless a program that does not take
these turns writes to it, which SQLite's busy timeout still covers.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Protocol

import sqlalchemy as sa

try:
    import fcntl
except ImportError:  # Windows: the processes of one server take no turns, its threads do.
    fcntl = None  # type: ignore[assignment]


class WriterTurns(Protocol):
    def turn(self) -> contextlib.AbstractContextManager[None]:
        """Held for the whole of a write transaction, commit included."""
        ...


class NoTurns:
    """PostgreSQL's row locks wake waiters at once: nothing to add."""

    def turn(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


class SqliteWriterTurns:
    """One writer at a time among the threads and processes opening the same database."""

    def __init__(self, database: str) -> None:
        self._path = f"{database}.writer-lock"
        self._thread_lock = threading.Lock()
        self._descriptor: int | None = None
        self._opened_by: int | None = None

    @contextlib.contextmanager
    def turn(self) -> Iterator[None]:
        with self._thread_lock:
            descriptor = self._file()
            if fcntl is not None:
                fcntl.flock(descriptor, fcntl.LOCK_EX)
            try:
                yield
            finally:
                if fcntl is not None:
                    fcntl.flock(descriptor, fcntl.LOCK_UN)

    def _file(self) -> int:
        # A forked child shares its parent's open file, and with it the parent's lock: it
        # opens its own.
        if self._descriptor is None or self._opened_by != os.getpid():
            self._descriptor = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            self._opened_by = os.getpid()
        return self._descriptor


def writer_turns(engine: sa.Engine) -> WriterTurns:
    if engine.dialect.name == "sqlite" and engine.url.database:
        return SqliteWriterTurns(engine.url.database)
    return NoTurns()
