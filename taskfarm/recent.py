"""Short memories: of verified logins, so that authentication does not cost a KDF run or a
database read on every request; of workers heard from, so that hearing from them again soon
costs no write."""

from __future__ import annotations

import hashlib
import secrets
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from cachetools import TTLCache

V = TypeVar("V")

#: How long a verified login is trusted without checking again. A password change or a
#: deletion made through another server process takes effect within this time.
TRUST_SECONDS = 30
MAX_ENTRIES = 4096
#: Beyond this many workers heard from at once, some are written down more often than needed.
MAX_SEEN_WORKERS = 65536


class RecentlyVerified(Generic[V]):
    """What credentials were verified to be (a user, say), for `TRUST_SECONDS`.

    Entries are keyed by a MAC of the credentials under a key born with this object, never
    by the credentials themselves: a memory dump reveals no password. The MAC is keyed BLAKE2b,
    a third of HMAC-SHA256's cost, paid on every authenticated request.
    """

    def __init__(self, timer: Callable[[], float], seconds: float = TRUST_SECONDS) -> None:
        self._key = secrets.token_bytes(hashlib.blake2b.MAX_KEY_SIZE)
        self._verified: TTLCache[bytes, V] = TTLCache(MAX_ENTRIES, ttl=seconds, timer=timer)
        self._lock = threading.Lock()

    def get(self, *credentials: str) -> V | None:
        digest = self._digest(credentials)
        with self._lock:
            # Indexing asks the timer once; `get` asks it again to check the key first.
            try:
                return self._verified[digest]
            except KeyError:
                return None

    def remember(self, verified: V, *credentials: str) -> None:
        with self._lock:
            self._verified[self._digest(credentials)] = verified

    def forget_all(self) -> None:
        with self._lock:
            self._verified.clear()

    def _digest(self, credentials: tuple[str, ...]) -> bytes:
        message = b"\x00".join(part.encode("utf-8", "surrogatepass") for part in credentials)
        return hashlib.blake2b(message, key=self._key, digest_size=32).digest()


class RecentlySeen:
    """Workers recorded as heard from in the last `seconds`: hearing from one again within that
    time need not be written down, so a worker's last contact is known to within `seconds`."""

    def __init__(self, timer: Callable[[], float], seconds: float) -> None:
        self._seen: TTLCache[str, bool] = TTLCache(MAX_SEEN_WORKERS, ttl=seconds, timer=timer)
        self._lock = threading.Lock()

    def __contains__(self, worker_uuid: str) -> bool:
        with self._lock:
            return worker_uuid in self._seen

    def add(self, worker_uuid: str) -> None:
        with self._lock:
            self._seen[worker_uuid] = True
