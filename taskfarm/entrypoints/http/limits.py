"""Refusing request bodies too large to be ours, without reading them whole."""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskfarm.entrypoints.http.responses import JSONResponse


class BodySizeLimit:
    """413 with a JSON detail for bodies over `max_bytes`: at once when Content-Length says so,
    else as soon as the chunks read add up to more (for chunked uploads).

    Starlette's own limit answers in plain text when Content-Length is known; this API answers
    every error in JSON.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        larger: Callable[[Scope, Headers], int | None] = lambda scope, headers: None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.larger = larger

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        max_bytes = self.larger(scope, headers) or self.max_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            await self._too_large(max_bytes)(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise HTTPException(413, _detail(max_bytes))
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self, max_bytes: int) -> JSONResponse:
        return JSONResponse({"detail": _detail(max_bytes)}, status_code=413)


def _detail(max_bytes: int) -> str:
    return f"the request body is larger than {max_bytes} bytes"
