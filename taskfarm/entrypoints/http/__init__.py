"""The HTTP API and pages, as a Starlette application."""

from __future__ import annotations

from taskfarm.entrypoints.http.app import create_app

__all__ = ["create_app"]
