"""Who a client logs in as: a user with their password, or a token in their place."""

from __future__ import annotations

import os

import attrs

#: Where a batch script's worker token is looked for, when no user is named.
TOKEN_VARIABLE = "TASKFARM_TOKEN"


class NoLogin(ValueError):
    """Neither a user nor a token was given."""


@attrs.frozen
class Login:
    """HTTP Basic credentials for the server. A token, a worker token from `taskfarm tokens
    create` or a user's from `/api/token`, goes as the username with an empty password, as
    the server asks."""

    username: str
    password: str = attrs.field(default="", repr=False)

    @classmethod
    def of(
        cls, username: str | None = None, password: str | None = None, token: str | None = None
    ) -> Login:
        """`token` if given; else the user and password if a user is named; else the token in
        the environment's TASKFARM_TOKEN."""
        if token:
            return cls(token)
        if username:
            return cls(username, password or "")
        from_environment = os.environ.get(TOKEN_VARIABLE)
        if from_environment:
            return cls(from_environment)
        raise NoLogin(
            "log in with a user and password (TASKFARM_USER, TASKFARM_PASSWORD) or a token "
            f"({TOKEN_VARIABLE}, from taskfarm tokens create)"
        )
