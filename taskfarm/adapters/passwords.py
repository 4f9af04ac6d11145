from __future__ import annotations

import argon2


class Argon2Hasher:
    """Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile:
    t=3, m=64 MiB, p=4), salted per password."""

    def __init__(self, hasher: argon2.PasswordHasher | None = None) -> None:
        self._hasher = hasher or argon2.PasswordHasher()

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (argon2.exceptions.VerificationError, ValueError):
            # InvalidHashError is a ValueError, and so is the UnicodeError of a stored hash or
            # a password that cannot be encoded: none of them is a match.
            return False
