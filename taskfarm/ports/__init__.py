"""The interfaces the core needs from the outside world. They speak domain types only."""

from __future__ import annotations

from taskfarm.ports.clock import Clock
from taskfarm.ports.security import PasswordHasher, TokenSigner
from taskfarm.ports.stores import (
    KeyStore,
    LoginFailureStore,
    RunStore,
    Storage,
    TokenStore,
    UserStore,
    WorkerStore,
)

__all__ = [
    "Clock",
    "KeyStore",
    "LoginFailureStore",
    "PasswordHasher",
    "RunStore",
    "Storage",
    "TokenSigner",
    "TokenStore",
    "UserStore",
    "WorkerStore",
]
