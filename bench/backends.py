"""Fresh, private databases for each measurement, so that nothing else is disturbed."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import redis
from psycopg import sql
from sqlalchemy.engine import make_url

from bench.common import POSTGRES_URL, REDIS_URL

#: PostgreSQL with commits that do not wait for the WAL to reach the disk: not something
#: taskfarm does, but what it would gain, measured (a crash may lose the last claims).
POSTGRES_ASYNC_COMMIT = "postgres, synchronous_commit=off"


def libpq(url: str) -> str:
    """The URL as libpq reads it: without SQLAlchemy's `+driver`."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@contextmanager
def postgres_schema(options: str = "") -> Iterator[str]:
    """A URL to an empty schema of its own, dropped afterwards; the URL sets `search_path`,
    so every process opening it (servers old and new) works in that schema, and any other
    session `options` (`-cname=value ...`)."""
    schema = f"bench_{uuid.uuid4().hex[:16]}"
    name = sql.Identifier(schema)
    with psycopg.connect(libpq(POSTGRES_URL), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(name))
    try:
        options = " ".join(filter(None, [f"-csearch_path={schema}", options]))
        # The application name tells this schema's connections apart, to measure their CPU.
        query = {"options": options, "application_name": schema}
        url = make_url(POSTGRES_URL).update_query_dict(query)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(libpq(POSTGRES_URL), autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(name))


def postgres_backends(url: str) -> list[int]:
    """The process ids of the PostgreSQL backends serving connections made with `url`."""
    name = make_url(url).query.get("application_name")
    if not name:
        return []
    with psycopg.connect(libpq(POSTGRES_URL), autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = %s", (name,)
        ).fetchall()
    return [int(pid) for (pid,) in rows]


@contextmanager
def redis_database() -> Iterator[str]:
    """`REDIS_URL`, its database emptied before and after."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@contextmanager
def sqlite_file() -> Iterator[str]:
    """A URL to a new SQLite file in a temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="taskfarm-bench-") as directory:
        yield f"sqlite:///{Path(directory) / 'taskfarm.db'}"


@contextmanager
def database(backend: str) -> Iterator[str]:
    """A `DATABASE_URL` to an empty database of `backend`: memory, sqlite, postgres (or
    `POSTGRES_ASYNC_COMMIT`) or redis."""
    if backend == "memory":
        yield "memory://"
    elif backend == "sqlite":
        with sqlite_file() as url:
            yield url
    elif backend == "postgres":
        with postgres_schema() as url:
            yield url
    elif backend == POSTGRES_ASYNC_COMMIT:
        with postgres_schema("-csynchronous_commit=off") as url:
            yield url
    elif backend == "redis":
        with redis_database() as url:
            yield url
    else:
        raise ValueError(f"unknown backend {backend!r}")
