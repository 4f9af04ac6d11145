"""The claim routes, dispatched straight to their endpoints.

Starlette reaches an endpoint of the API through the body and query checks, its exception
middleware, two routers (the app's and the `/api` mount's), the mount's authentication and
the route's own exception wrapper: each a coroutine, some a copy of the scope. On a claim
those layers cost more CPU than the claim itself (`bench/results/profile.md`), and claims
are most of what a server does. `FastLane` hands the requests of a few routes to their
endpoints itself, with the same authentication and the same error answers.

Every request it is not sure of goes on to the app unchanged, which answers it as it always
did: any other route or method, a query string (a 400 for the claim routes, which have no
parameters) and a body of no declared length or larger than the limit (a 413).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import ASGIApp, HTTPExceptionHandler, Receive, Scope, Send

from taskfarm.entrypoints.http.auth import PasswordChecks


class FastLane:
    """Serves `routes`, mounted at `prefix` behind `checks` in `app`, as the app would; their
    errors are answered by `handlers`, the app's, except those no handler but Exception's
    takes: they go up to the server error middleware, as from any other route."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        prefix: str,
        routes: Sequence[Route],
        checks: PasswordChecks,
        max_body_bytes: int,
        handlers: Mapping[type[Exception] | int, HTTPExceptionHandler],
    ) -> None:
        self.app = app
        self.prefix = prefix
        self.routes = tuple(routes)
        self.checks = checks
        self.max_body_bytes = max_body_bytes
        self._handlers = {
            kind: handler
            for kind, handler in handlers.items()
            if isinstance(kind, type) and kind is not Exception
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._route(scope)
        if route is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive, send)
        try:
            scope["caller"] = await self.checks.caller(scope)
            response = await route.endpoint(request)
        except Exception as error:
            response = await self._answer(request, error)
        await response(scope, receive, send)

    def _route(self, scope: Scope) -> Route | None:
        """The route of ours the request is for, with the scope made as the mount and the
        routers would make it; None for a request to pass on."""
        if (
            scope["type"] != "http"
            or scope["query_string"]
            or not scope["path"].startswith(self.prefix)
            or not self._declares_small_body(scope)
        ):
            return None
        root_path = scope.get("root_path", "")
        mounted = {
            "app_root_path": scope.get("app_root_path", root_path),
            "root_path": root_path + self.prefix,
        }
        # As the mount would see it, made once for every route tried.
        trial = {**scope, **mounted}
        for route in self.routes:
            match, matched = route.matches(trial)
            if match is Match.FULL:
                scope.update(mounted)
                scope.update(matched)
                scope["route"] = route
                return route
        return None

    def _declares_small_body(self, scope: Scope) -> bool:
        for name, value in scope["headers"]:
            if name == b"content-length":
                return value.isdigit() and int(value) <= self.max_body_bytes
        return False

    async def _answer(self, request: Request, error: Exception) -> Response:
        for kind in type(error).__mro__:
            handler = self._handlers.get(kind)
            if handler is not None:
                answer = handler(request, error)
                response = await answer if inspect.isawaitable(answer) else answer
                assert isinstance(response, Response)
                return response
        raise error
