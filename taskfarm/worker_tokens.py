"""Worker tokens: made for one run, listed, revoked, and checked on every request."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

import attrs

from taskfarm.domain import (
    WORKER_TOKEN_PREFIX,
    Caller,
    TokenNotFound,
    WorkerToken,
    check_token_name,
    token_digest,
)
from taskfarm.ports import Clock, TokenStore
from taskfarm.recent import RecentlyVerified

#: How long a process trusts a worker token it checked without reading the store again: a
#: revoked token is refused by every process within this time.
TRUST_SECONDS = 0.5
TOKEN_BYTES = 32


@attrs.frozen
class IssuedToken:
    """A worker token just made: the secret is shown this once, and never stored."""

    token: WorkerToken
    secret: str


@attrs.define
class WorkerTokens:
    tokens: TokenStore
    clock: Clock
    _recent: RecentlyVerified[WorkerToken] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._recent = RecentlyVerified(lambda: self.clock.now().timestamp(), TRUST_SECONDS)

    def issue(
        self,
        owner: str,
        run_uuid: str,
        *,
        lifetime: dt.timedelta | None = None,
        name: object = None,
    ) -> IssuedToken:
        """A token that works on the tasks of `run_uuid` for `owner`, who may work on them."""
        now = self.clock.now()
        token = WorkerToken(
            id=secrets.token_hex(6),
            run=run_uuid,
            owner=owner,
            created=now,
            expires=None if lifetime is None else now + lifetime,
            name=None if name is None else check_token_name(name),
        )
        secret = WORKER_TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_BYTES)
        self.tokens.add_token(token, token_digest(secret))
        return IssuedToken(token, secret)

    def recall(self, secret: str) -> WorkerToken | None:
        """The token `secret` is, if checked in the last `TRUST_SECONDS` and not expired."""
        token = self._recent.get(secret)
        return token if token is not None and not token.expired(self.clock.now()) else None

    def check(self, secret: str) -> WorkerToken | None:
        """The token `secret` is, unless it was never made, was revoked or has expired."""
        token = self.recall(secret)
        if token is not None:
            return token
        token = self.tokens.token_by_digest(token_digest(secret))
        if token is None or token.expired(self.clock.now()):
            return None
        self._recent.remember(token, secret)
        return token

    def listed(self, caller: Caller) -> Sequence[WorkerToken]:
        """The caller's tokens; an admin's, everybody's."""
        return self.tokens.list_tokens(None if caller.admin else caller.username)

    def revoke(self, caller: Caller, token_id: str) -> WorkerToken:
        """Revokes a token of the caller's (an admin's: anybody's); another user's token is
        not found, as a token that does not exist."""
        tokens = {token.id: token for token in self.listed(caller)}
        if token_id not in tokens:
            raise TokenNotFound(token_id)
        revoked = self.tokens.revoke_token(token_id)
        # This process refuses it at once; the others within TRUST_SECONDS.
        self._recent.forget_all()
        return revoked
