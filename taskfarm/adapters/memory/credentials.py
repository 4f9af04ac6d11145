"""Worker tokens and failed logins, in this process's memory."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Sequence

import attrs

from taskfarm.domain import Conflict, FailedLogins, TokenNotFound, WorkerToken


class MemoryTokenStore:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._tokens: dict[str, tuple[WorkerToken, str]] = {}

    def add_token(self, token: WorkerToken, digest: str) -> None:
        with self._lock:
            if token.id in self._tokens:
                raise Conflict(f"there is already a token {token.id!r}")
            self._tokens[token.id] = (token, digest)

    def token_by_digest(self, digest: str) -> WorkerToken | None:
        with self._lock:
            return next((t for t, stored in self._tokens.values() if stored == digest), None)

    def list_tokens(self, owner: str | None = None) -> Sequence[WorkerToken]:
        with self._lock:
            tokens = [token for token, _ in self._tokens.values()]
        listed = [token for token in tokens if owner is None or token.owner == owner]
        # As the other stores order them: by creation, then by id.
        return sorted(listed, key=lambda token: (token.created, token.id))

    def revoke_token(self, token_id: str) -> WorkerToken:
        with self._lock:
            try:
                return self._tokens.pop(token_id)[0]
            except KeyError:
                raise TokenNotFound(token_id) from None


class MemoryLoginFailureStore:
    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self._failed: dict[str, FailedLogins] = {}

    def failed_logins(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> list[FailedLogins | None]:
        with self._lock:
            found = [self._failed.get(key) for key in counted_by]
        return [f if f is not None and f.lasts(now, window) else None for f in found]

    def count_failed_login(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> None:
        with self._lock:
            for key in counted_by:
                known = self._failed.get(key)
                if known is None or not known.lasts(now, window):
                    self._failed[key] = FailedLogins(1, now)
                else:
                    self._failed[key] = attrs.evolve(known, failures=known.failures + 1)

    def forget_failed_logins(self, counted_by: str) -> None:
        with self._lock:
            self._failed.pop(counted_by, None)
