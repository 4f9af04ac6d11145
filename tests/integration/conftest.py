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
import sqlalchemy as sa

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.redis import RedisStorage
from taskfarm.adapters.redis.storage import connect
from taskfarm.adapters.sqlalchemy import SqlStorage, tables
from taskfarm.ports import Storage
from tests.claiming import leave_loops
from tests.conftest import fresh_postgres_schema, fresh_redis_database


@attrs.define
class StorageFactory:
    """Opens stores on one fresh database; every store it opens sees the same data.

    Each call is what one more server process would open. `url` is what a process of its
    own opens (with `SqlStorage.from_url`), None when the data lives in this process only.
    """

    backend: str
    url: str | None
    _open: Callable[[], Storage]
    _wipe: Callable[[], None]
    _opened: list[Storage] = attrs.Factory(list)

    def __call__(self) -> Storage:
        storage = self._open()
        self._opened.append(storage)
        return storage

    def empty(self) -> Storage:
        """A store on the same database, emptied of everything stores before it wrote."""
        self._wipe()
        storage = self()
        storage.create_schema()
        return storage

    def close(self) -> None:
        for storage in self._opened:
            leave_loops(storage)
            storage.close()


Backend = Callable[[pytest.FixtureRequest, Path], AbstractContextManager[StorageFactory]]


@contextmanager
def _memory(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    current = [MemoryStorage()]

    def wipe() -> None:
        current[0] = MemoryStorage()

    yield StorageFactory("memory", None, lambda: current[0], wipe)


def _sql_wipe(url: str) -> Callable[[], None]:
    def wipe() -> None:
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.begin() as connection:
            for table in reversed(tables.metadata.sorted_tables):
                connection.execute(table.delete())
        engine.dispose()

    return wipe


@contextmanager
def _sqlite(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    yield StorageFactory("sqlite", url, lambda: SqlStorage.from_url(url), _sql_wipe(url))


@contextmanager
def _postgres(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    with fresh_postgres_schema(request.getfixturevalue("postgres_server")) as url:
        yield StorageFactory("postgres", url, lambda: SqlStorage.from_url(url), _sql_wipe(url))


def _redis_wipe(url: str) -> Callable[[], None]:
    def wipe() -> None:
        client = connect(url)
        client.flushdb()
        client.close()

    return wipe


@contextmanager
def _redis(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    with fresh_redis_database(request.getfixturevalue("redis_server")) as url:
        yield StorageFactory("redis", url, lambda: RedisStorage.from_url(url), _redis_wipe(url))


@contextmanager
def _redis_cluster(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StorageFactory]:
    with fresh_redis_database(request.getfixturevalue("redis_cluster_server")) as url:
        yield StorageFactory(
            "redis-cluster", url, lambda: RedisStorage.from_url(url), _redis_wipe(url)
        )


BACKENDS: dict[str, Backend] = {
    "memory": _memory,
    "sqlite": _sqlite,
    "postgres": _postgres,
    "redis": _redis,
    "redis-cluster": _redis_cluster,
}
SQL_BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
REDIS_BACKENDS = [
    pytest.param("redis", marks=pytest.mark.redis),
    pytest.param("redis-cluster", marks=pytest.mark.redis),
]
#: Backends that server processes of their own can share.
SHARED_BACKENDS = [*SQL_BACKENDS, *REDIS_BACKENDS]
ALL_BACKENDS = ["memory", *SHARED_BACKENDS]


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
