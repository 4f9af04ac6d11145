"""The interfaces the core needs from the outside world. They speak domain types only."""

from __future__ import annotations

from taskfarm.ports.clock import Clock
from taskfarm.ports.security import PasswordHasher, TokenSigner
from taskfarm.ports.stores import KeyStore, RunStore, Storage, UserStore, WorkerStore

__all__ = [
    "Clock",
    "KeyStore",
    "PasswordHasher",
    "RunStore",
    "Storage",
    "TokenSigner",
    "UserStore",
    "WorkerStore",
]
