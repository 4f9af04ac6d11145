"""What happened in each request (method, route, status, time), told to whoever records it:
the access log and the metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import attrs
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@attrs.frozen
class Answered:
    """One request, once answered. `route` is the path template of the route that took it
    (`/api/runs/{uuid}`, or `/api/{path}` for a request the API refused before routing it),
    None when no route did; `path` is the path as sent."""

    method: str
    route: str | None
    path: str
    status: int
    seconds: float


#: Called once per request, on the event loop: it must be quick and must not block.
Observer = Callable[[Answered], None]


class ObserveRequests:
    """Times each HTTP request and tells every observer once it is answered, or once it
    failed (as a 500). The route is computed once, for all of them."""

    def __init__(self, app: ASGIApp, observers: Sequence[Observer]) -> None:
        self.app = app
        self.observers = tuple(observers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            answered = Answered(
                method=scope["method"],
                route=_route(scope),
                path=scope["path"],
                status=status,
                seconds=time.perf_counter() - started,
            )
            for observer in self.observers:
                observer(answered)


def _route(scope: Scope) -> str | None:
    route = scope.get("route")
    if not isinstance(route, Route | Mount):
        return None
    # Below a mount, root_path has grown by the mount's path, a matched mount's own included.
    prefix = str(scope.get("root_path", "")).removeprefix(str(scope.get("app_root_path", "")))
    return prefix + (route.path_format if isinstance(route, Route) else "/{path}")
