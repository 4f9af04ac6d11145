from __future__ import annotations

from typing import cast

from starlette.requests import Request

from taskfarm.bootstrap import Services


def services(request: Request) -> Services:
    """The services the application was created with."""
    return cast(Services, request.app.state.services)
