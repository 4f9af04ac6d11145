from __future__ import annotations

import datetime as dt
from typing import Protocol

from taskfarm.domain import TokenClaims


class PasswordHasher(Protocol):
    """Hashes passwords with a slow, salted KDF and checks them in constant time."""

    def hash(self, password: str) -> str: ...

    def verify(self, password_hash: str, password: str) -> bool:
        """True when `password` matches; False, never an exception, when it does not."""
        ...


class TokenSigner(Protocol):
    """Issues tamper-proof, expiring tokens."""

    def issue(self, claims: TokenClaims) -> str: ...

    def read(self, token: str, now: dt.datetime) -> TokenClaims | None:
        """The claims of a token this signer issued and that has not expired, else None."""
        ...

    def mac(self, message: str) -> str:
        """A code that only holders of the signer's key can make for `message`."""
        ...
