"""Users, passwords and tokens: who may use the server."""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

import attrs

from taskfarm.domain import (
    AuthenticationFailed,
    TokenClaims,
    User,
    UserNotFound,
    check_password,
    check_username,
)
from taskfarm.ports import Clock, PasswordHasher, TokenSigner, UserStore
from taskfarm.recent import RecentlyVerified


def _new_stamp() -> str:
    return secrets.token_urlsafe(16)


@attrs.define
class Accounts:
    """Adds and removes users, checks their passwords, issues and checks their tokens."""

    users: UserStore
    hasher: PasswordHasher
    tokens: TokenSigner
    clock: Clock
    token_lifetime: dt.timedelta
    # Checked against when the user does not exist, so that timing does not tell names apart.
    _decoy_hash: str = attrs.field(init=False)
    _recent_logins: RecentlyVerified[User] = attrs.field(init=False)
    _recent_users: RecentlyVerified[User] = attrs.field(init=False)
    #: Verified tokens: their user, and when they expire.
    _recent_tokens: RecentlyVerified[tuple[User, dt.datetime]] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._decoy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._recent_logins = RecentlyVerified(self._seconds)
        self._recent_users = RecentlyVerified(self._seconds)
        self._recent_tokens = RecentlyVerified(self._seconds)

    def _seconds(self) -> float:
        return self.clock.now().timestamp()

    def add_user(self, username: str, password: str) -> User:
        check_username(username)
        password_hash = self.hasher.hash(check_password(password))
        return self.users.add_user(username, password_hash, _new_stamp())

    def change_password(self, username: str, password: str) -> None:
        password_hash = self.hasher.hash(check_password(password))
        self.users.set_password(username, password_hash, _new_stamp())
        self._forget_recent()

    def delete_user(self, username: str) -> None:
        self.users.delete_user(username)
        self._forget_recent()

    def _forget_recent(self) -> None:
        self._recent_logins.forget_all()
        self._recent_users.forget_all()
        self._recent_tokens.forget_all()

    def list_users(self) -> Sequence[User]:
        return self.users.list_users()

    def has_users(self) -> bool:
        return bool(self.users.list_users())

    def recall(self, username: str, password: str) -> User | None:
        """The user of HTTP Basic credentials (a token has an empty password) verified in the
        last few seconds, found without a KDF run or a database read: cheap enough to call on
        the event loop. None means they must be checked in full."""
        if password == "":
            recalled = self._recent_tokens.get(username)
            if recalled is None:
                return None
            user, expires = recalled
            return user if self.clock.now() < expires else None
        return self._recent_logins.get(username, password)

    def authenticate(self, username: str, password: str) -> User:
        """The user these credentials name. Verified credentials are trusted for a few
        seconds without running the (deliberately slow) KDF again."""
        recent = self._recent_logins.get(username, password)
        if recent is not None:
            return recent
        try:
            user = self.users.get_user(username)
        except UserNotFound:
            self.hasher.verify(self._decoy_hash, password)
            raise AuthenticationFailed("wrong username or password") from None
        if not self.hasher.verify(user.password_hash, password):
            raise AuthenticationFailed("wrong username or password")
        self._recent_logins.remember(user, username, password)
        return user

    def issue_token(self, user: User) -> str:
        expires = self.clock.now() + self.token_lifetime
        return self.tokens.issue(TokenClaims(user.username, user.token_stamp, expires))

    def form_token(self, user: User) -> str:
        """What a page's forms carry, so that a request another site makes a signed-in browser
        send (which carries its credentials) is told apart: that site cannot read the page.
        It dies with the user's tokens, at a password change."""
        return self.tokens.mac(f"form\x00{user.username}\x00{user.token_stamp}")

    def check_form_token(self, user: User, token: str) -> bool:
        return secrets.compare_digest(self.form_token(user).encode(), token.encode())

    def authenticate_token(self, token: str) -> User:
        recalled = self.recall(token, "")
        if recalled is not None:
            return recalled
        claims = self.tokens.read(token, self.clock.now())
        if claims is None:
            raise AuthenticationFailed(
                "the token is invalid or has expired: get a new one from /api/token"
            )
        user = self._recent_users.get(claims.username)
        if user is None:
            try:
                user = self.users.get_user(claims.username)
            except UserNotFound:
                raise AuthenticationFailed("the token's user no longer exists") from None
            self._recent_users.remember(user, claims.username)
        if not secrets.compare_digest(user.token_stamp, claims.stamp):
            raise AuthenticationFailed("the token was revoked by a password change")
        self._recent_tokens.remember((user, claims.expires), token)
        return user
