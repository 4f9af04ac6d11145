"""Fakes of the ports that make tests slow or uncontrollable: the clock and the hasher."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import itertools


class FakeClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, start: dt.datetime = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)) -> None:
        self.current = start

    def now(self) -> dt.datetime:
        return self.current

    def advance(self, delta: dt.timedelta) -> None:
        self.current += delta


class FakeHasher:
    """Salted SHA-256: deterministic and cheap where Argon2 is neither, same promises."""

    def __init__(self) -> None:
        self._salts = itertools.count()

    def hash(self, password: str) -> str:
        salt = f"{next(self._salts):08x}"
        return f"fake${salt}${_digest(salt, password)}"

    def verify(self, password_hash: str, password: str) -> bool:
        scheme, _, rest = password_hash.partition("$")
        salt, separator, digest = rest.partition("$")
        if scheme != "fake" or not separator:
            return False
        return hmac.compare_digest(digest, _digest(salt, password))


class CountingHasher(FakeHasher):
    """The fake hasher, counting how often a password is checked against a hash."""

    def __init__(self) -> None:
        super().__init__()
        self.verifications = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verifications += 1
        return super().verify(password_hash, password)


def _digest(salt: str, password: str) -> str:
    return hashlib.sha256(f"{salt}${password}".encode("utf-8", "surrogatepass")).hexdigest()
