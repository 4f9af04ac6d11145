"""A short memory of verified logins, so that authentication does not cost a KDF run or a
database read on every request."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections.abc import Callable

from cachetools import TTLCache

from taskfarm.domain import User

#: How long a verified login is trusted without checking again. A password change or a
#: deletion made through another server process takes effect within this time.
TRUST_SECONDS = 30
MAX_ENTRIES = 4096


class RecentlyVerified:
    """Users by the credentials they were verified with, for `TRUST_SECONDS`.

    Entries are keyed by an HMAC of the credentials under a key born with this object, never
    by the credentials themselves: a memory dump reveals no password.
    """

    def __init__(self, timer: Callable[[], float], seconds: float = TRUST_SECONDS) -> None:
        self._key = secrets.token_bytes(32)
        self._users: TTLCache[bytes, User] = TTLCache(MAX_ENTRIES, ttl=seconds, timer=timer)
        self._lock = threading.Lock()

    def get(self, *credentials: str) -> User | None:
        with self._lock:
            return self._users.get(self._digest(credentials))

    def remember(self, user: User, *credentials: str) -> None:
        with self._lock:
            self._users[self._digest(credentials)] = user

    def forget_all(self) -> None:
        with self._lock:
            self._users.clear()

    def _digest(self, credentials: tuple[str, ...]) -> bytes:
        message = b"\x00".join(part.encode("utf-8", "surrogatepass") for part in credentials)
        return hmac.new(self._key, message, hashlib.sha256).digest()
