from __future__ import annotations

from typing import cast

from starlette.requests import Request

from taskfarm.bootstrap import Services
from taskfarm.entrypoints.http.metrics import Metrics


def services(request: Request) -> Services:
    """The services the application was created with."""
    return cast(Services, request.app.state.services)


def metrics(request: Request) -> Metrics:
    """The metrics the application counts in."""
    return cast(Metrics, request.app.state.metrics)
