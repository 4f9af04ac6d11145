"""The one table that turns errors into responses: JSON `{"detail": ...}`, never a traceback."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import HTTPExceptionHandler

from taskfarm.domain import (
    AuthenticationFailed,
    Conflict,
    Forbidden,
    InvalidInput,
    NotFound,
    StorageError,
    StorageFull,
    TooManyFailedLogins,
)
from taskfarm.entrypoints.http.responses import JSONResponse

logger = logging.getLogger(__name__)

#: How long a client should wait before it tries a write again on a full database.
FULL_RETRY_AFTER_SECONDS = 30
#: Asks browsers and clients to send HTTP Basic credentials.
CHALLENGE = {"WWW-Authenticate": 'Basic realm="taskfarm"'}

_STATUS_OF: Mapping[type[Exception], int] = {
    InvalidInput: 400,
    AuthenticationFailed: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    TooManyFailedLogins: 429,
    # Before StorageError, which it is: the first match answers.
    StorageFull: 507,
    StorageError: 503,
}


def _detail(status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


async def _domain_error(request: Request, exc: Exception) -> Response:
    status_code = next(code for kind, code in _STATUS_OF.items() if isinstance(exc, kind))
    if isinstance(exc, StorageFull):
        # Every write fails until someone makes room: the operator must hear of it.
        logger.error("storage full on %s %s: %s", request.method, request.url.path, exc)
        return _detail(507, str(exc), {"Retry-After": str(FULL_RETRY_AFTER_SECONDS)})
    if isinstance(exc, StorageError):
        logger.error("storage failed on %s %s: %s", request.method, request.url.path, exc)
        return _detail(503, "the database is unavailable; try again shortly")
    if isinstance(exc, AuthenticationFailed):
        return _detail(401, str(exc), CHALLENGE)
    if isinstance(exc, TooManyFailedLogins):
        return _detail(429, str(exc), {"Retry-After": str(exc.retry_after)})
    return _detail(status_code, str(exc))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    return _detail(exc.status_code, str(exc.detail), exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("unexpected error on %s %s", request.method, request.url.path)
    return _detail(500, "internal server error; the server log has the details")


EXCEPTION_HANDLERS: Mapping[type[Exception] | int, HTTPExceptionHandler] = {
    **dict.fromkeys(_STATUS_OF, _domain_error),
    HTTPException: _http_error,
    Exception: _unexpected_error,
}
