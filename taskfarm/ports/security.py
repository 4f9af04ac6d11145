from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Protocol


class PasswordHasher(Protocol):
    """Hashes passwords with a slow, salted KDF and checks them in constant time."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False, never an exception, when it does not."""
        ...


class TokenSigner(Protocol):
    """Issues tamper-proof, expiring tokens carrying a few string claims."""

    def issue(self, claims: Mapping[str, str], expires: dt.datetime) -> str: ...

    def read(self, token: str, now: dt.datetime) -> Mapping[str, str] | None:
        """The claims of a token this signer issued and that has not expired, else None."""
        ...
