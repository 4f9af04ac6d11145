"""The front page: what this server is."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from taskfarm import __version__

_PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>taskfarm {version}</title></head>
<body>
<h1>taskfarm</h1>
<p>version: {version}</p>
<p>A task farm server: workers ask <code>/api/</code> for the next task of a run over HTTP.</p>
</body>
</html>
"""


async def index(request: Request) -> Response:
    """What this server is and its version.
    ---
    summary: The front page
    responses:
      200:
        description: an HTML page naming taskfarm and its version
        content:
          text/html:
            schema:
              type: string
    """
    return HTMLResponse(_PAGE.format(version=__version__))
