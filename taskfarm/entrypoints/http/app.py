"""The application factory: routes, authentication and error handling around given services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Mount, Route

from taskfarm.bootstrap import Services
from taskfarm.entrypoints.http.auth import RequireUser
from taskfarm.entrypoints.http.errors import EXCEPTION_HANDLERS
from taskfarm.entrypoints.http.limits import BodySizeLimit
from taskfarm.entrypoints.http.routes import accounts, pages, runs, tasks

#: Every request body of this API is a few short fields; refuse anything far larger unread.
MAX_BODY_BYTES = 1024 * 1024

RUN = "/runs/{uuid:str}"
TASK = RUN + "/tasks/{index:int}"

API_ROUTES = [
    Route("/token", accounts.get_token, methods=["GET"]),
    Route("/worker", accounts.register_worker, methods=["POST"]),
    Route("/run", runs.create_run, methods=["POST"]),
    Route("/runs", runs.list_runs, methods=["GET"]),
    Route(RUN, runs.get_run, methods=["GET"]),
    Route(RUN, runs.delete_run, methods=["DELETE"]),
    Route(RUN + "/restart", runs.restart_run, methods=["POST"]),
    Route(RUN + "/task", tasks.claim_task, methods=["POST"]),
    Route(TASK, tasks.get_task, methods=["GET"]),
    Route(TASK, tasks.update_task, methods=["PUT"]),
]


def create_app(services: Services, *, close_on_shutdown: bool = True) -> Starlette:
    """The ASGI application serving `services`; it closes them on shutdown unless told not to."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            if close_on_shutdown:
                services.close()

    app = Starlette(
        routes=[
            Route("/", pages.index, methods=["GET"]),
            Mount(
                "/api",
                routes=API_ROUTES,
                middleware=[Middleware(RequireUser, accounts=services.accounts)],
            ),
        ],
        middleware=[Middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.services = services
    return app
