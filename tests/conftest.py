"""The database servers tests may use, and what happens when one is missing.

PostgreSQL is the one named by `TASKFARM_TEST_POSTGRES_URL`, Redis the one named by
`TASKFARM_TEST_REDIS_URL`; a Redis Cluster is started for the tests that need one. A missing
server skips its tests on a developer's machine, but fails them under CI (`CI` set): CI must
never pass by skipping.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn

import psycopg
import pytest
import redis
from hypothesis import settings
from psycopg import sql
from sqlalchemy.engine import make_url

from taskfarm.adapters.redis.storage import connect
from tests.fakes import FakeClock
from tests.integration.redis_cluster import redis_cluster

# Tests share two cores with servers and databases: an example's time says nothing about the
# code. Speed is measured by `make bench` instead.
settings.register_profile("taskfarm", deadline=None)
settings.load_profile("taskfarm")

POSTGRES_URL = os.environ.get(
    "TASKFARM_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TASKFARM_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
#: Tests take Redis databases from this one up, one per pytest-xdist worker, and empty them;
#: checkouts testing side by side on one Redis each set a first database of their own.
FIRST_REDIS_TEST_DB = int(os.environ.get("TASKFARM_TEST_REDIS_FIRST_DB", "8"))


#: Root may not run PostgreSQL's programs (nor PgBouncer): the tests' own servers run as the
#: package's user then, with these `subprocess` arguments.
AS_POSTGRES: dict[str, Any] = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}


def unavailable(service: str, error: Exception) -> NoReturn:
    """Skips the test for want of `service`; fails it under CI."""
    message = f"{service} is unreachable: {error}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI runs every test: start the service)", pytrace=False)
    pytest.skip(message)


def _libpq(url: str) -> str:
    """The URL as libpq reads it: without SQLAlchemy's `+driver` or the `postgres` alias."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of the test PostgreSQL server, once it answers."""
    try:
        with psycopg.connect(_libpq(POSTGRES_URL), connect_timeout=5):
            pass
    except psycopg.Error as error:
        unavailable(f"PostgreSQL at {POSTGRES_URL}", error)
    return POSTGRES_URL


@contextmanager
def fresh_postgres_schema(server_url: str) -> Iterator[str]:
    """A URL to an empty schema of its own on the server, dropped afterwards.

    Isolates tests without a database each: the URL sets `search_path`, which every process
    opening it (a server, a worker) inherits.
    """
    schema = f"test_{uuid.uuid4().hex[:16]}"
    name = sql.Identifier(schema)
    with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(name))
    try:
        url = make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(_libpq(server_url), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(name))


@pytest.fixture(scope="module")
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A `DATABASE_URL` to an empty PostgreSQL schema, shared by the tests of one module."""
    with fresh_postgres_schema(postgres_server) as url:
        yield url


@pytest.fixture(scope="session")
def redis_server(worker_id: str) -> str:
    """A URL to a Redis database of this test process's own, once Redis answers."""
    number = 0 if worker_id == "master" else int(worker_id.removeprefix("gw"))
    url = make_url(REDIS_URL).set(database=str(FIRST_REDIS_TEST_DB + number))
    rendered = url.render_as_string(hide_password=False)
    try:
        with redis.Redis.from_url(rendered, socket_connect_timeout=5) as client:
            client.ping()
    except redis.RedisError as error:
        unavailable(f"Redis at {REDIS_URL}", error)
    return rendered


@contextmanager
def fresh_redis_database(url: str) -> Iterator[str]:
    """The URL, its database (every node's, on a cluster) emptied before and after."""
    client = connect(url)
    try:
        client.flushdb()
        yield url
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="module")
def redis_url(redis_server: str) -> Iterator[str]:
    """A `DATABASE_URL` to an empty Redis database, shared by the tests of one module."""
    with fresh_redis_database(redis_server) as url:
        yield url


@pytest.fixture(scope="session")
def redis_cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A `redis+cluster://` URL to a three-master Redis Cluster started for this session."""
    try:
        with redis_cluster(tmp_path_factory.mktemp("redis-cluster")) as url:
            yield url
    except RuntimeError as error:
        unavailable("a Redis Cluster", error)


@pytest.fixture
def clock() -> FakeClock:
    """A clock that moves only when a test moves it."""
    return FakeClock()
