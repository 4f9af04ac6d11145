"""Every backend behind the `Storage` port, on a fresh database for each test.

`storage_factory` is parametrized over the backends in `BACKENDS`; a test that needs only
some of them parametrizes it indirectly with their names (`SQL_BACKENDS` for SQL only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import attrs
import pytest

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.sqlalchemy import SqlStorage
from taskfarm.ports import Storage
from tests.conftest import fresh_postgres_schema


@attrs.define
class StorageFactory:
    """Opens stores on one fresh database; every store it opens sees the same data.

    Each call is what one more server process would open. `url` is what a process of its
    own opens (with `SqlStorage.from_url`), None when the data lives in this process only.
    """

    backend: str
    url: str | None
    _open: Callable[[], Storage]
    _opened: list[Storage] = attrs.Factory(list)

    def __call__(self) -> Storage:
        storage = self._open()
        self._opened.append(storage)
        return storage

    def close(self) -> None:
        for storage in self._opened:
            storage.close()


Backend = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[StorageFactory]]


@contextmanager
def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    storage = MemoryStorage()
    yield StorageFactory("memory", None, lambda: storage)


@contextmanager
def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    yield StorageFactory("sqlite", url, lambda: SqlStorage.from_url(url))


@contextmanager
def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    with fresh_postgres_schema(request.getfixturevalue("postgres_server")) as url:
        yield StorageFactory("postgres", url, lambda: SqlStorage.from_url(url))


# The Redis store joins here: its factory, and its name in the lists below with its mark.
BACKENDS: dict[str, Backend] = {"memory": _memory, "sqlite": _sqlite, "postgres": _postgres}
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
ALL_BACKENDS = ["memory", *SQL_BACKENDS]


@pytest.fixture(params=ALL_BACKENDS)
def storage_factory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    """Opens stores on a fresh database of each backend in turn, its schema created."""
    with BACKENDS[request.param](request, tmp_path) as factory:
        try:
            factory().create_schema()
            yield factory
        finally:
            factory.close()


@pytest.fixture
def storage(storage_factory: StorageFactory) -> Storage:
    """A store on a fresh database of each backend in turn."""
    return storage_factory()
