"""The application as uvicorn imports it in every server process."""

from __future__ import annotations

from starlette.applications import Starlette

from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.entrypoints.http.access_log import AccessLog
from taskfarm.entrypoints.http.app import create_app


def app_from_env() -> Starlette:
    """Builds the app from the environment: each process opens its own database connections,
    and writes its own access log to stderr."""
    settings = Settings.from_env()
    return create_app(bootstrap(settings), access_log=AccessLog.to_stderr(settings.log_format))
