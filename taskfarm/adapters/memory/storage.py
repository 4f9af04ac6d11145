from __future__ import annotations

import threading

from taskfarm.adapters.memory.accounts import MemoryKeyStore, MemoryUserStore, MemoryWorkerStore
from taskfarm.adapters.memory.credentials import MemoryLoginFailureStore, MemoryTokenStore
from taskfarm.adapters.memory.run_store import MemoryRunStore


class MemoryStorage:
    """Everything in this process's memory: for tests, and for trying taskfarm out."""

    def __init__(self) -> None:
        lock = threading.Lock()
        self.runs = MemoryRunStore(lock)
        self.workers = MemoryWorkerStore(lock)
        self.users = MemoryUserStore(lock)
        self.keys = MemoryKeyStore(lock)
        self.tokens = MemoryTokenStore(lock)
        self.logins = MemoryLoginFailureStore(lock)

    def create_schema(self) -> None:
        """Nothing to create."""

    def upgrade_schema(self) -> None:
        """Nothing to upgrade: the data lives as long as the process that made it."""

    def ping(self) -> None:
        """This process's memory always answers."""

    async def leave_loop(self) -> None:
        """Nothing to close: memory belongs to no event loop."""

    def close(self) -> None:
        """Nothing to release."""
