"""Refusing query parameters the API does not know: a misspelt `?al=True` is a 400 that says
so, not a request carried out as if it had not been sent."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from taskfarm.entrypoints.http.responses import JSONResponse

#: For each documented path, as a regular expression, the query parameters of each method.
_Known = list[tuple[re.Pattern[str], Mapping[str, frozenset[str]]]]


class KnownQueryParameters:
    """A 400 for a query parameter that the OpenAPI document (`app.state.openapi`) does not
    give the operation of an `/api/` path. Requests without a query cost nothing."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._known: _Known | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["query_string"] and scope["path"].startswith("/api/"):
            unknown = self._unknown(scope)
            if unknown:
                detail = f"unknown query parameter {', '.join(repr(n) for n in unknown)}"
                await JSONResponse({"detail": detail}, status_code=400)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _unknown(self, scope: Scope) -> list[str]:
        if self._known is None:
            self._known = _known(scope["app"].state.openapi)
        method = scope["method"].lower()
        given = {name for name, _ in parse_qsl(scope["query_string"].decode("latin-1"), True)}
        for pattern, methods in self._known:
            # Several paths may match (/tasks/claim and /tasks/{index}): the one with the
            # method is the route's.
            if method in methods and pattern.fullmatch(scope["path"]):
                return sorted(given - methods[method])
        return []  # a 404 or a 405, from the router


def _known(document: Mapping[str, Any]) -> _Known:
    known: _Known = []
    for path, operations in document.get("paths", {}).items():
        pattern = re.compile(re.sub(r"\\\{\w+\\\}", "[^/]+", re.escape(path)))
        known.append(
            (
                pattern,
                {
                    method: frozenset(
                        parameter["name"]
                        for parameter in operation.get("parameters", [])
                        if parameter.get("in") == "query"
                    )
                    for method, operation in operations.items()
                },
            )
        )
    return known
