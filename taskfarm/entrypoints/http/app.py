"""The application factory: routes, authentication and error handling around given services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.types import Scope

from taskfarm.bootstrap import Services
from taskfarm.entrypoints.http.auth import PasswordChecks, RequireUser
from taskfarm.entrypoints.http.errors import EXCEPTION_HANDLERS
from taskfarm.entrypoints.http.fast_lane import FastLane
from taskfarm.entrypoints.http.leases import SWEEP_SECONDS, sweep_leases
from taskfarm.entrypoints.http.limits import BodySizeLimit
from taskfarm.entrypoints.http.metrics import Metrics
from taskfarm.entrypoints.http.observe import Observer, ObserveRequests
from taskfarm.entrypoints.http.openapi import openapi_document, openapi_endpoint
from taskfarm.entrypoints.http.queries import KnownQueryParameters
from taskfarm.entrypoints.http.routes import accounts, health, pages, prometheus, runs, tasks
from taskfarm.entrypoints.http.templating import create_templates
from taskfarm.entrypoints.http.uploads import MAX_UPLOAD_BYTES

#: Every request body of this API is a few short fields; refuse anything far larger unread.
MAX_BODY_BYTES = 1024 * 1024

RUN = "/runs/{uuid:str}"
UPLOAD = "/run/upload"
TASK = RUN + "/tasks/{index:int}"

#: The claims: the published client's, and `taskfarm work`'s. They take the fast lane.
CLAIM_ROUTES = [
    Route(RUN + "/task", tasks.claim_task, methods=["POST"]),
    Route(RUN + "/tasks/claim", tasks.claim_tasks, methods=["POST"]),
]
# Starlette tries routes in turn, and each try is a regular expression: the routes every
# worker calls over and over come first.
API_ROUTES = [
    *CLAIM_ROUTES,
    Route(TASK, tasks.TaskResource),
    Route(TASK + "/heartbeat", tasks.heartbeat, methods=["POST"]),
    Route(RUN + "/tasks/heartbeat", tasks.renew_leases, methods=["POST"]),
    Route(RUN, runs.RunResource),
    Route("/token", accounts.get_token, methods=["GET"]),
    Route("/worker", accounts.register_worker, methods=["POST"]),
    Route("/workers", accounts.list_workers, methods=["GET"]),
    Route("/tokens", accounts.TokensResource),
    Route("/tokens/{token_id:str}", accounts.revoke_token, methods=["DELETE"]),
    Route("/run", runs.create_run, methods=["POST"]),
    Route(UPLOAD, runs.upload_run, methods=["POST"]),
    Route("/runs", runs.list_runs, methods=["GET"]),
    Route(RUN + "/restart", runs.restart_run, methods=["POST"]),
    Route(RUN + "/tasks", tasks.list_tasks, methods=["GET"]),
    Route(RUN + "/retry", runs.retry_run, methods=["POST"]),
]


def create_app(
    services: Services,
    *,
    close_on_shutdown: bool = True,
    sweep_seconds: float = SWEEP_SECONDS,
    access_log: Observer | None = None,
) -> Starlette:
    """The ASGI application serving `services`: it sweeps expired leases every `sweep_seconds`
    while it runs, tells `access_log` of every request, and closes the services on shutdown
    unless told not to."""
    metrics = Metrics(services.taskfarm)
    checks = PasswordChecks(services.accounts)
    observers = [observer for observer in (access_log, metrics.observe_request) if observer]

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        try:
            async with anyio.create_task_group() as background:
                background.start_soon(
                    sweep_leases, services.taskfarm, metrics.count_expired_leases, sweep_seconds
                )
                yield
                background.cancel_scope.cancel()
        finally:
            checks.close()
            await services.storage.leave_loop()
            if close_on_shutdown:
                services.close()

    app = Starlette(
        routes=[
            # Public, unlike the rest of /api/: tools read it before anyone logs in.
            Route("/api/openapi.json", openapi_endpoint, methods=["GET"]),
            Mount(
                "/api",
                routes=API_ROUTES,
                middleware=[Middleware(RequireUser, checks=checks)],
            ),
            Route("/", pages.index, methods=["GET"]),
            Route("/dashboard", pages.dashboard, methods=["GET"]),
            Route("/dashboard/runs/{uuid:str}", pages.run_page, methods=["GET"]),
            Route("/dashboard/runs/{uuid:str}/retry", pages.retry_failed, methods=["POST"]),
            # Public: load balancers probe them without credentials.
            Route("/healthz", health.healthz, methods=["GET"]),
            Route("/readyz", health.readyz, methods=["GET"]),
            # Public too: operators who want it private restrict it at the load balancer.
            Route("/metrics", prometheus.scrape, methods=["GET"]),
        ],
        middleware=[
            Middleware(ObserveRequests, observers=observers),
            Middleware(
                FastLane,
                prefix="/api",
                routes=CLAIM_ROUTES,
                checks=checks,
                max_body_bytes=MAX_BODY_BYTES,
                handlers=EXCEPTION_HANDLERS,
            ),
            Middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES, larger=_upload_limit),
            Middleware(KnownQueryParameters),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.templates = create_templates()
    app.state.metrics = metrics
    app.state.password_checks = checks
    app.state.openapi = openapi_document(app.routes)
    return app


def _upload_limit(scope: Scope, headers: Headers) -> int | None:
    """The inputs of a new run, uploaded, are read as they come, not held whole."""
    return MAX_UPLOAD_BYTES if scope["path"] == "/api" + UPLOAD else None
