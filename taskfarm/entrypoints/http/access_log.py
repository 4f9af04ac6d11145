"""One log line per request: method, route, status and time, on the `taskfarm.access` logger."""

from __future__ import annotations

import logging
import time

from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("taskfarm.access")


class AccessLog:
    """Logs each HTTP request once it is answered, or once it failed (as a 500).

    The route is the matched route's path template (`/api/runs/{uuid}`), so that lines group
    by operation and carry no identifiers; the raw path when no route matched.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

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
            duration_ms = round((time.perf_counter() - started) * 1000, 2)
            method, route = scope["method"], _route(scope)
            logger.info(
                "%s %s %d %.2fms",
                method,
                route,
                status,
                duration_ms,
                extra={"method": method, "route": route, "status": status, "ms": duration_ms},
            )


def _route(scope: Scope) -> str:
    route = scope.get("route")
    if isinstance(route, Route):
        # Below a mount, root_path has grown by the mount's path.
        root_path, app_root_path = (
            str(scope.get("root_path", "")),
            str(scope.get("app_root_path", "")),
        )
        prefix = root_path.removeprefix(app_root_path)
        return prefix + route.path_format
    return str(scope["path"])
