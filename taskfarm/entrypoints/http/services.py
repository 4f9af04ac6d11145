from __future__ import annotations

from typing import cast

from starlette.requests import Request

from taskfarm.bootstrap import Services
from taskfarm.domain import Caller
from taskfarm.entrypoints.http.auth import PasswordChecks
from taskfarm.entrypoints.http.metrics import Metrics
from taskfarm.guarded import GuardedFarm


def services(request: Request) -> Services:
    """The services the application was created with."""
    return cast(Services, request.app.state.services)


def caller(request: Request) -> Caller:
    """Whoever sent the request, as `RequireUser` found them."""
    return cast(Caller, request.scope["caller"])


def farm(request: Request) -> GuardedFarm:
    """The farm as the request's caller may use it: what every route works with."""
    return services(request).farm_for(caller(request))


def password_checks(request: Request) -> PasswordChecks:
    """Where the application checks credentials."""
    return cast(PasswordChecks, request.app.state.password_checks)


def metrics(request: Request) -> Metrics:
    """The metrics the application counts in."""
    return cast(Metrics, request.app.state.metrics)
