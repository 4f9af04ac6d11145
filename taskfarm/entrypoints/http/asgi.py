"""The application as uvicorn imports it in every server process."""

from __future__ import annotations

from starlette.applications import Starlette

from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.entrypoints.http.app import create_app
from taskfarm.entrypoints.logs import spare_unused_record_fields


def app_from_env() -> Starlette:
    """Builds the app from the environment: each process opens its own database connections."""
    spare_unused_record_fields()
    return create_app(bootstrap(Settings.from_env()))
