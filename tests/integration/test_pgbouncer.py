"""PostgreSQL through PgBouncer in transaction mode, as docs/deployment.md proposes for many
server processes: each transaction may get another server connection, so nothing may outlive
one (no session settings, no prepared statements, `prepare_threshold=none` in the URL for a
PgBouncer before 1.21). Claims stay exactly-once through it, from several processes."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest

from taskfarm.adapters.sqlalchemy.engine import PREPARE_THRESHOLD, psycopg_options
from taskfarm.bootstrap import open_storage
from taskfarm.domain import RunPolicy, StorageError
from tests.claiming import leave_loops
from tests.conftest import AS_POSTGRES, unavailable
from tests.integration.live_server import free_port
from tests.integration.processes import serving
from tests.integration.test_concurrent_claims import (
    NUM_TASKS,
    assert_every_task_done_once,
    assert_requeued_claimed_twice,
    in_processes,
)


@contextmanager
def _database(server_url: str) -> Iterator[str]:
    """A database of its own on the test server (PgBouncer passes no `search_path`)."""
    name = f"tfbouncer_{uuid.uuid4().hex[:12]}"
    admin = psycopg.connect(server_url.replace("postgresql+psycopg", "postgresql"), autocommit=True)
    try:
        admin.execute(f"CREATE DATABASE {name}")
        yield name
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.close()


@contextmanager
def _pgbouncer(database: str) -> Iterator[str]:
    """PgBouncer in transaction mode in front of `database`, two server connections for all
    its clients; yields the URL of the database through it."""
    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    if not Path(binary).exists():
        unavailable("pgbouncer", FileNotFoundError("apt-get install pgbouncer"))
    folder = Path(tempfile.mkdtemp(prefix="taskfarm-pgbouncer-"))
    port = free_port()
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{database} = host=127.0.0.1 port=5432 dbname={database}\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {folder / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 2\nmax_client_conn = 200\n"
        # libpq's keepalive settings are the client's own: nothing for the server.
        "ignore_startup_parameters = extra_float_digits\n"
    )
    if AS_POSTGRES:
        shutil.chown(folder, "postgres", "postgres")
    url = f"postgresql://postgres@127.0.0.1:{port}/{database}"
    command = [binary, str(folder / "pgbouncer.ini")]
    try:
        with serving(command, lambda: _answers(url), "PgBouncer", **AS_POSTGRES):
            yield url
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _answers(url: str) -> bool:
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


def test_claims_through_pgbouncer_in_transaction_mode_are_exactly_once(
    postgres_server: str,
) -> None:
    with _database(postgres_server) as database, _pgbouncer(database) as through:
        url = f"{through}?prepare_threshold=none"
        storage = open_storage(url)
        try:
            storage.create_schema()
            run = storage.runs.create_run("run", NUM_TASKS, RunPolicy())
            outcomes = in_processes(url, run.uuid, requeue=True)
            assert_requeued_claimed_twice(outcomes)
            assert_every_task_done_once(storage, run.uuid, outcomes)
        finally:
            leave_loops(storage)
            storage.close()


@pytest.mark.parametrize("threshold", ["soon", "-1", "1.5"])
def test_a_prepare_threshold_that_is_not_a_number_or_none_is_refused(threshold: str) -> None:
    with pytest.raises(StorageError, match="prepare_threshold"):
        open_storage(f"postgresql://postgres@127.0.0.1/test?prepare_threshold={threshold}")


@pytest.mark.parametrize(("given", "read"), [("none", None), ("None", None), ("0", 0), ("12", 12)])
def test_a_prepare_threshold_is_read_as_psycopg_takes_it(given: str, read: int | None) -> None:
    options = psycopg_options({"dbname": "test", PREPARE_THRESHOLD: given})
    assert options == {"dbname": "test", PREPARE_THRESHOLD: read}
