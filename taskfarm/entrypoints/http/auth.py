"""HTTP Basic authentication: a username and password, or a token and an empty password."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import os
import weakref

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from taskfarm.accounts import Accounts
from taskfarm.domain import AuthenticationFailed, User

logger = logging.getLogger(__name__)

#: Password checks a server process runs at once. Each runs a deliberately slow KDF on a core:
#: more at once would not finish sooner, and would hold threads of the threadpool that
#: SQLite's claims and every other blocking call wait for. The others wait on the event loop.
PASSWORD_CHECKS_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)


def basic_credentials(authorization: str | None) -> tuple[str, str]:
    """The (username, password) of an `Authorization: Basic` header."""
    if authorization is None:
        raise AuthenticationFailed("log in with HTTP Basic: a username and password, or a token")
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise AuthenticationFailed("only HTTP Basic authentication is supported")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise AuthenticationFailed("the Basic credentials are not valid base64 UTF-8") from None
    username, colon, password = decoded.partition(":")
    if not colon:
        raise AuthenticationFailed("the Basic credentials lack the colon before the password")
    return username, password


def authenticate(accounts: Accounts, scope: Scope) -> User:
    """The user whose credentials the request carries; raises AuthenticationFailed.

    Blocks: a password check runs a deliberately slow KDF, a token check may read the database.
    """
    username, password = basic_credentials(Headers(scope=scope).get("authorization"))
    return _check(accounts, username, password, scope)


def _check(accounts: Accounts, username: str, password: str, scope: Scope) -> User:
    # Accounts recall credentials verified lately themselves: nothing to remember here.
    try:
        if password == "":
            return accounts.authenticate_token(username)
        return accounts.authenticate(username, password)
    except AuthenticationFailed:
        client = scope.get("client") or ("unknown", 0)
        who = "a token" if password == "" else repr(username[:64])
        logger.warning("failed login with %s from %s", who, client[0])
        raise


class RequireUser:
    """Lets a request through only with valid credentials, and puts the user in the scope.

    Credentials verified a few seconds ago are recalled on the event loop; others are checked
    in the threadpool, away from it.
    """

    def __init__(
        self, app: ASGIApp, accounts: Accounts, checks_at_once: int = PASSWORD_CHECKS_AT_ONCE
    ) -> None:
        self.app = app
        self.accounts = accounts
        self.checks_at_once = checks_at_once
        # An asyncio semaphore belongs to the loop that first waits on it: one per loop.
        self._turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        username, password = basic_credentials(Headers(scope=scope).get("authorization"))
        user = self.accounts.recall(username, password)
        if user is None and password == "":
            user = await run_in_threadpool(_check, self.accounts, username, password, scope)
        elif user is None:
            async with self._password_turn():
                user = await run_in_threadpool(_check, self.accounts, username, password, scope)
        scope["user"] = user
        await self.app(scope, receive, send)

    def _password_turn(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        turn = self._turns.get(loop)
        if turn is None:
            turn = self._turns[loop] = asyncio.Semaphore(self.checks_at_once)
        return turn
