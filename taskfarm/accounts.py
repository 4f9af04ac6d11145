"""Users, passwords and tokens: who may use the server."""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import secrets
from collections.abc import Sequence

import attrs
from cachetools import TTLCache

from taskfarm import audit
from taskfarm.domain import (
    LOGIN_WINDOW,
    PER_ADDRESS,
    PER_USERNAME,
    AuthenticationFailed,
    Caller,
    FailedLogins,
    TokenClaims,
    TokenNotFound,
    TooManyFailedLogins,
    User,
    UserNotFound,
    by_address,
    by_username,
    check_password,
    check_username,
    is_worker_token,
)
from taskfarm.ports import (
    Clock,
    LoginFailureStore,
    PasswordHasher,
    RunStore,
    Storage,
    TokenSigner,
    UserStore,
)
from taskfarm.recent import RecentlyVerified
from taskfarm.worker_tokens import WorkerTokens

#: Each failure is counted by username, then by address, with these limits.
_LIMITS = (PER_USERNAME, PER_ADDRESS)
#: Lockouts a process remembers: a flood from more addresses than that reads the store.
REMEMBERED_LOCKOUTS = 10_000


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
    worker_tokens: WorkerTokens
    logins: LoginFailureStore
    #: Where the runs of a user deleted are left to nobody.
    runs: RunStore
    # Checked against when the user does not exist, so that timing does not tell names apart.
    _decoy_hash: str = attrs.field(init=False)
    _recent_logins: RecentlyVerified[User] = attrs.field(init=False)
    _recent_users: RecentlyVerified[User] = attrs.field(init=False)
    #: Verified tokens: their user, and when they expire.
    _recent_tokens: RecentlyVerified[tuple[User, dt.datetime]] = attrs.field(init=False)
    #: Usernames and addresses locked out (`by_username`, `by_address`), and until when.
    _lockouts: TTLCache[str, dt.datetime] = attrs.field(init=False)

    @classmethod
    def of(
        cls,
        storage: Storage,
        hasher: PasswordHasher,
        tokens: TokenSigner,
        clock: Clock,
        token_lifetime: dt.timedelta,
    ) -> Accounts:
        """The accounts kept in `storage`: users, worker tokens and failed logins."""
        return cls(
            users=storage.users,
            hasher=hasher,
            tokens=tokens,
            clock=clock,
            token_lifetime=token_lifetime,
            worker_tokens=WorkerTokens(storage.tokens, clock),
            logins=storage.logins,
            runs=storage.runs,
        )

    def __attrs_post_init__(self) -> None:
        self._decoy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        self._recent_logins = RecentlyVerified(self._seconds)
        self._recent_users = RecentlyVerified(self._seconds)
        self._recent_tokens = RecentlyVerified(self._seconds)
        self._lockouts = TTLCache(REMEMBERED_LOCKOUTS, LOGIN_WINDOW.total_seconds(), self._seconds)

    def _seconds(self) -> float:
        return self.clock.now().timestamp()

    def add_user(self, username: str, password: str, *, admin: bool = False) -> User:
        check_username(username)
        password_hash = self.hasher.hash(check_password(password))
        user = self.users.add_user(username, password_hash, _new_stamp(), admin=admin)
        audit.record(audit.operator(), "add user", user=username, role=user.role)
        return user

    def change_password(self, username: str, password: str) -> None:
        password_hash = self.hasher.hash(check_password(password))
        self.users.set_password(username, password_hash, _new_stamp())
        self._forget_recent()
        audit.record(audit.operator(), "change password", user=username)

    def delete_user(self, username: str) -> int:
        """Deletes a user and revokes their worker tokens. Their runs are left to nobody
        (admins see them), so that a user made later under the same name gets none of them;
        returns how many runs they had."""
        self.users.delete_user(username)
        self._forget_recent()
        for token in self.worker_tokens.tokens.list_tokens(username):
            with contextlib.suppress(TokenNotFound):  # revoked meanwhile
                self.worker_tokens.tokens.revoke_token(token.id)
        disowned = self.runs.disown(username)
        audit.record(audit.operator(), "delete user", user=username, runs_disowned=disowned)
        return disowned

    def _forget_recent(self) -> None:
        self._recent_logins.forget_all()
        self._recent_users.forget_all()
        self._recent_tokens.forget_all()

    def list_users(self) -> Sequence[User]:
        return self.users.list_users()

    def has_users(self) -> bool:
        return bool(self.users.list_users())

    def recall(self, username: str, password: str) -> Caller | None:
        """The caller of HTTP Basic credentials verified in the last few seconds, found without
        a KDF run or a database read: cheap enough to call on the event loop. None means they
        must be checked in full (`caller`)."""
        if is_worker_token(username):
            token = self.worker_tokens.recall(username)
            return None if token is None else self._recent_owner(token.owner, token.run)
        # A token goes with any password, as the original server took it.
        recalled = self._recent_tokens.get(username)
        if recalled is not None:
            user, expires = recalled
            return Caller(user) if self.clock.now() < expires else None
        if password == "":
            return None
        logged_in = self._recent_logins.get(username, password)
        return None if logged_in is None else Caller(logged_in)

    def _recent_owner(self, username: str, run_uuid: str) -> Caller | None:
        user = self._recent_users.get(username)
        return None if user is None else Caller(user, run=run_uuid)

    def caller(self, username: str, password: str, address: str = "unknown") -> Caller:
        """Whoever HTTP Basic credentials name: a worker token, a user's token (with an empty
        password, or any: the original server tried the token first), or a user and their
        password, counted against guessing from `address` (`authenticate`)."""
        recalled = self.recall(username, password)
        if recalled is not None:
            return recalled
        if is_worker_token(username):
            return self._worker_caller(username)
        if password == "":
            return Caller(self.authenticate_token(username))
        with contextlib.suppress(AuthenticationFailed):
            if self.tokens.read(username, self.clock.now()) is not None:
                return Caller(self.authenticate_token(username))
        return Caller(self.authenticate(username, password, address))

    def _worker_caller(self, secret: str) -> Caller:
        token = self.worker_tokens.check(secret)
        if token is None:
            raise AuthenticationFailed(
                "the worker token was revoked, has expired or never existed: make a new one "
                "with `taskfarm tokens create`"
            )
        return Caller(self._user(token.owner), run=token.run)

    def _user(self, username: str) -> User:
        user = self._recent_users.get(username)
        if user is None:
            try:
                user = self.users.get_user(username)
            except UserNotFound:
                raise AuthenticationFailed("the token's user no longer exists") from None
            self._recent_users.remember(user, username)
        return user

    def authenticate(self, username: str, password: str, address: str = "unknown") -> User:
        """The user these credentials name. Verified credentials are trusted for a few
        seconds without running the (deliberately slow) KDF again. Past too many failed
        logins of the username, or from the address, raises TooManyFailedLogins without
        running it at all."""
        recent = self._recent_logins.get(username, password)
        if recent is not None:
            return recent
        # What this process learnt already refuses a flood without reading the store...
        self.check_lockout(username, address)
        counted_by = [by_username(username), by_address(address)]
        now = self.clock.now()
        failed = self.logins.failed_logins(counted_by, now, LOGIN_WINDOW)
        for key, failures, most in zip(counted_by, failed, _LIMITS, strict=True):
            self._lock_out(key, failures, most, now)
        # ...and what the store says, counted by every process, refuses the rest.
        self.check_lockout(username, address)
        try:
            user = self._verified(username, password)
        except AuthenticationFailed:
            self.logins.count_failed_login(counted_by, now, LOGIN_WINDOW)
            for key, failures, most in zip(counted_by, failed, _LIMITS, strict=True):
                self._lock_out(key, FailedLogins.one_more(failures, now), most, now)
            raise
        if failed[0] is not None:
            self.logins.forget_failed_logins(counted_by[0])
        self._recent_logins.remember(user, username, password)
        return user

    def check_lockout(self, username: str, address: str) -> None:
        """Raises TooManyFailedLogins if this process knows that the username, or the address,
        failed too often lately; never blocks. Other processes' failures are read from the
        store by `authenticate`."""
        now = self.clock.now()
        for key in (by_username(username), by_address(address)):
            until = self._lockouts.get(key)
            if until is not None and now < until:
                raise TooManyFailedLogins(math.ceil((until - now).total_seconds()))

    def _lock_out(
        self, key: str, failures: FailedLogins | None, most: int, now: dt.datetime
    ) -> None:
        wait = None if failures is None else failures.retry_after(most, now)
        if wait is not None:
            self._lockouts[key] = now + dt.timedelta(seconds=wait)

    def _verified(self, username: str, password: str) -> User:
        try:
            user = self.users.get_user(username)
        except UserNotFound:
            self.hasher.verify(self._decoy_hash, password)
            raise AuthenticationFailed("wrong username or password") from None
        if not self.hasher.verify(user.password_hash, password):
            raise AuthenticationFailed("wrong username or password")
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
        """The user of a token of theirs (from `issue_token`)."""
        recalled = self._recent_tokens.get(token)
        if recalled is not None and self.clock.now() < recalled[1]:
            return recalled[0]
        claims = self.tokens.read(token, self.clock.now())
        if claims is None:
            raise AuthenticationFailed(
                "the token is invalid or has expired: get a new one from /api/token"
            )
        user = self._user(claims.username)
        if not secrets.compare_digest(user.token_stamp, claims.stamp):
            raise AuthenticationFailed("the token was revoked by a password change")
        self._recent_tokens.remember((user, claims.expires), token)
        return user
