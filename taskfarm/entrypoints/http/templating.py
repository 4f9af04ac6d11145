"""The templates of the pages: Jinja2, shipped inside the package, every value escaped."""

from __future__ import annotations

from typing import cast

import jinja2
from starlette.requests import Request
from starlette.templating import Jinja2Templates

from taskfarm import __version__
from taskfarm.entrypoints.http import formatting
from taskfarm.entrypoints.summaries import last_line, percent, shown_input


def create_templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("taskfarm.entrypoints.http", "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
        # A name a template gets wrong fails the page (and its tests) instead of showing blank.
        undefined=jinja2.StrictUndefined,
    )
    environment.filters.update(
        count=formatting.count,
        percent=percent,
        pace=formatting.pace,
        time_left=formatting.time_left,
        moment=formatting.moment,
        last_line=last_line,
        shown_input=shown_input,
    )
    environment.globals["version"] = __version__
    return Jinja2Templates(env=environment)


def templates(request: Request) -> Jinja2Templates:
    """The templates the application was created with."""
    return cast(Jinja2Templates, request.app.state.templates)
