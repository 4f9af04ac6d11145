"""A flood of password checks takes turns on the event loop: no more run at once than the
server allows, and requests with a token are not held up behind them."""

from __future__ import annotations

import asyncio
import base64
import os
import threading
import time
from typing import Any

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.entrypoints.http import create_app
from taskfarm.entrypoints.http.auth import PASSWORD_CHECK_NICENESS, PASSWORD_CHECKS_AT_ONCE
from tests.fakes import FakeHasher

USER, PASSWORD = "ada", "analytical engine"
CHECK_SECONDS = 0.2


class SlowHasher(FakeHasher):
    """A KDF that takes its time, and counts how many of its checks run at once."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.running = self.most_at_once = 0
        self.niceness: set[int] = set()

    def verify(self, password_hash: str, password: str) -> bool:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.niceness.add(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        time.sleep(CHECK_SECONDS)
        with self._lock:
            self.running -= 1
        return super().verify(password_hash, password)


def test_wrong_passwords_take_turns_while_a_token_goes_through() -> None:
    hasher = SlowHasher()
    services = bootstrap(Settings(database_url="memory://"), storage=MemoryStorage(), hasher=hasher)
    services.accounts.add_user(USER, PASSWORD)
    token = services.accounts.issue_token(services.accounts.authenticate(USER, PASSWORD))
    hasher.niceness.clear()  # of the check just above
    app = create_app(services)

    async def flood() -> tuple[list[int], float, int]:
        guesses = [asyncio.create_task(status_of(app, USER, f"guess {i}")) for i in range(6)]
        await asyncio.sleep(CHECK_SECONDS / 2)  # the guesses are in
        started = time.monotonic()
        with_token = await status_of(app, token, "")
        waited = time.monotonic() - started
        return list(await asyncio.gather(*guesses)), waited, with_token

    statuses, token_wait, token_status = asyncio.run(flood())

    assert statuses == [401] * 6
    assert hasher.most_at_once == PASSWORD_CHECKS_AT_ONCE
    assert token_status == 200
    # Six checks in turns take a second at least; the token waited for none of them.
    assert token_wait < 6 * CHECK_SECONDS / PASSWORD_CHECKS_AT_ONCE / 2
    # And they ran below the server's own priority, leaving the cores to claims.
    assert hasher.niceness == {os.getpriority(os.PRIO_PROCESS, 0) + PASSWORD_CHECK_NICENESS}


async def status_of(app: Any, username: str, password: str) -> int:
    """The status of `GET /api/runs` with these credentials, sent straight to the ASGI app."""
    credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/api/runs",
        "raw_path": b"/api/runs",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"farm"), (b"authorization", f"Basic {credentials}".encode())],
        "client": ("127.0.0.1", 5000),
        "server": ("farm", 80),
        "state": {},
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(next(m["status"] for m in sent if m["type"] == "http.response.start"))
