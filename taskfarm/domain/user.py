"""A user: who may create runs and farm out tasks."""

from __future__ import annotations

import datetime as dt

import attrs

from taskfarm.domain.errors import InvalidInput

MAX_USERNAME_LENGTH = 64
MAX_PASSWORD_LENGTH = 1024


def check_username(username: str) -> str:
    # HTTP Basic separates the user from the password at the first colon.
    if (
        not 0 < len(username) <= MAX_USERNAME_LENGTH
        or ":" in username
        or not username.isprintable()
    ):
        raise InvalidInput(
            f"a username is 1 to {MAX_USERNAME_LENGTH} printable characters without a colon"
        )
    return username


def check_password(password: str) -> str:
    if not 0 < len(password) <= MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"a password is 1 to {MAX_PASSWORD_LENGTH} characters")
    try:
        password.encode()
    except UnicodeEncodeError:
        # Lone surrogates (from JSON escapes or undecodable arguments) cannot be hashed.
        raise InvalidInput("a password must be valid Unicode text") from None
    return password


@attrs.frozen
class User:
    """A user as stored: never the password, only its hash.

    `token_stamp` changes whenever the password does, which invalidates every token issued
    before; deleting the user invalidates them too. An `admin` sees and changes every run;
    other users, only their own.
    """

    id: int
    username: str
    password_hash: str = attrs.field(repr=False)
    token_stamp: str = attrs.field(repr=False)
    admin: bool = False

    @property
    def role(self) -> str:
        return "admin" if self.admin else "user"


@attrs.frozen
class TokenClaims:
    """What a token says: whose it is, the user's `token_stamp` when it was issued (a later
    password change revokes it), and when it expires."""

    username: str
    stamp: str = attrs.field(repr=False)
    expires: dt.datetime
