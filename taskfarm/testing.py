"""A pytest plugin: a real taskfarm server for the tests of programs that use one.

    def test_my_worker(taskfarm_server):
        run = TaskFarm(taskfarm_server.user, taskfarm_server.password, numTasks=10,
                       url_base=taskfarm_server.api)
        ...

`taskfarm_server` serves a fresh in-memory store to each test, from a thread of the test
process; `running_taskfarm()` does the same for a block of code, on any store.

PYTEST_DONT_REWRITE: the plugin has no asserts to rewrite, and test modules may import it
before pytest loads it as a plugin.
"""

from __future__ import annotations

import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING

import attrs
import pytest

if TYPE_CHECKING:
    import uvicorn

    from taskfarm.config import Settings

USER = "tester"
STARTUP_SECONDS = 30


@attrs.frozen
class TaskFarmServer:
    """A running server: where it is, and a user who may use it."""

    url: str
    user: str
    password: str = attrs.field(repr=False)

    @property
    def api(self) -> str:
        """The API's base URL, which clients call `url_base`."""
        return self.url + "api/"


@contextmanager
def running_taskfarm(
    settings: Settings | None = None,
    *,
    port: int = 0,
    user: str = USER,
    password: str | None = None,
) -> Iterator[TaskFarmServer]:
    """Serves the HTTP API on 127.0.0.1:`port` (0: a free one) from a background thread, on
    the store `settings` names (default: in memory), to `user` with `password` (default: a
    random one).

    A port and a database served before can be served again, so that clients can be tested
    against a server that stops and comes back: the user then gets `password` again, which
    ends its tokens (the clients of `taskfarm.client` get new ones by themselves).
    """
    # The server package is imported only when a server is started, so that loading the
    # plugin, which pytest does for every test run, costs nothing.
    import argon2
    import uvicorn

    from taskfarm.adapters.passwords import Argon2Hasher
    from taskfarm.bootstrap import bootstrap
    from taskfarm.config import Settings
    from taskfarm.domain import Conflict
    from taskfarm.entrypoints.http import create_app

    # Argon2 at its cheapest: a throwaway server need not resist password cracking, and its
    # tests should not wait for a KDF built to be slow.
    hasher = Argon2Hasher(argon2.PasswordHasher.from_parameters(argon2.profiles.CHEAPEST))
    services = bootstrap(settings or Settings(database_url="memory://"), hasher=hasher)
    password = password or secrets.token_urlsafe(16)
    try:
        try:
            services.accounts.add_user(user, password)
        except Conflict:
            services.accounts.change_password(user, password)
    except BaseException:
        services.close()
        raise
    # Bound here, before the thread starts, so that the port is known and taken at once.
    listener = socket.socket()
    with closing(listener):
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        # No websockets: the API has none, and their libraries warn on import.
        config = uvicorn.Config(create_app(services), log_config=None, access_log=False, ws="none")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [listener]}, name="taskfarm-server", daemon=True
        )
        thread.start()
        try:
            _wait_until_started(server, thread)
            host, bound_port = listener.getsockname()
            yield TaskFarmServer(url=f"http://{host}:{bound_port}/", user=user, password=password)
        finally:
            server.should_exit = True
            thread.join(STARTUP_SECONDS)


def _wait_until_started(server: uvicorn.Server, thread: threading.Thread) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive():
            raise RuntimeError("the taskfarm server stopped while starting; see the log above")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the taskfarm server did not start in {STARTUP_SECONDS} s")
        time.sleep(0.01)


@pytest.fixture
def taskfarm_server() -> Iterator[TaskFarmServer]:
    """A taskfarm server of the test's own, on an empty in-memory store."""
    with running_taskfarm() as server:
        yield server
