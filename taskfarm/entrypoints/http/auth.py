"""HTTP Basic authentication: a username and password, or a token and an empty password."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from taskfarm.accounts import Accounts
from taskfarm.domain import AuthenticationFailed, Caller, is_worker_token

logger = logging.getLogger(__name__)

#: Password checks a server process runs at once. Each runs a deliberately slow KDF on a core:
#: more at once would not finish sooner, and would hold threads of the threadpool that
#: SQLite's claims and every other blocking call wait for. The others wait on the event loop.
PASSWORD_CHECKS_AT_ONCE = max(1, (os.cpu_count() or 2) // 2)
#: How much lower their priority is (as `nice` counts): a core busy with claims wins it.
PASSWORD_CHECK_NICENESS = 10


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


def _check(accounts: Accounts, username: str, password: str, scope: Scope) -> Caller:
    # Accounts recall credentials verified lately themselves: nothing to remember here.
    address = client_address(scope)
    try:
        return accounts.caller(username, password, address)
    except AuthenticationFailed:
        who = "a token" if password == "" or is_worker_token(username) else repr(username[:64])
        logger.warning("failed login with %s from %s", who, address)
        raise


def client_address(scope: Scope) -> str:
    """The client's address; behind a proxy, the one it forwarded (uvicorn's proxy headers,
    from the addresses in FORWARDED_ALLOW_IPS)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


class PasswordChecks:
    """Finds who a request's credentials name, away from the event loop, and runs password
    checks on threads of their own: at most `checks_at_once`, at a lower CPU priority than
    the rest of the server, so that a flood of logins can neither hold the threadpool that
    claims wait for nor take the cores from them. Requests past too many failed logins are
    refused on the event loop, without a thread or a read of the store, once this process
    knows of it."""

    def __init__(self, accounts: Accounts, checks_at_once: int = PASSWORD_CHECKS_AT_ONCE) -> None:
        self.accounts = accounts
        self.checks_at_once = checks_at_once
        self._checks: ThreadPoolExecutor | None = None

    async def caller(self, scope: Scope) -> Caller:
        """Raises AuthenticationFailed or TooManyFailedLogins."""
        username, password = basic_credentials(Headers(scope=scope).get("authorization"))
        caller = self.accounts.recall(username, password)
        if caller is not None:
            return caller
        if password == "" or is_worker_token(username):
            return await run_in_threadpool(_check, self.accounts, username, password, scope)
        self.accounts.check_lockout(username, client_address(scope))
        if self._checks is None:
            self._checks = ThreadPoolExecutor(
                self.checks_at_once,
                thread_name_prefix="taskfarm-password",
                initializer=_lower_priority,
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._checks, _check, self.accounts, username, password, scope
        )

    def close(self) -> None:
        """Stops the threads; checks asked for later start new ones."""
        if self._checks is not None:
            self._checks.shutdown(wait=False, cancel_futures=True)
            self._checks = None


def _lower_priority() -> None:
    """Lowers the calling thread's CPU priority, where threads have priorities of their own
    (Linux); elsewhere, leaves it."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PASSWORD_CHECK_NICENESS)


class RequireUser:
    """Lets a request through only with valid credentials, and puts the caller in the scope."""

    def __init__(self, app: ASGIApp, checks: PasswordChecks) -> None:
        self.app = app
        self.checks = checks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["caller"] = await self.checks.caller(scope)
        await self.app(scope, receive, send)
