from __future__ import annotations

from typing import cast

from starlette.requests import Request

from taskfarm.bootstrap import Services
from taskfarm.entrypoints.http.claim_queue import ClaimQueue
from taskfarm.entrypoints.http.metrics import Metrics


def services(request: Request) -> Services:
    """The services the application was created with."""
    return cast(Services, request.app.state.services)


def metrics(request: Request) -> Metrics:
    """The metrics the application counts in."""
    return cast(Metrics, request.app.state.metrics)


def claim_queue(request: Request) -> ClaimQueue:
    """Where this process's claims wait to go to the store together."""
    return cast(ClaimQueue, request.app.state.claim_queue)
