"""The Prometheus scrape endpoint."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from taskfarm.entrypoints.http.metrics import CONTENT_TYPE
from taskfarm.entrypoints.http.services import metrics


def scrape(request: Request) -> Response:
    """The server's metrics in Prometheus's text format: every server process's counts summed,
    and the runs' tasks by state. A plain `def`: reading the runs asks the database.
    ---
    summary: Prometheus metrics
    responses:
      200:
        description: the metrics, in the Prometheus text exposition format 0.0.4
        content:
          text/plain:
            schema:
              type: string
    """
    return Response(metrics(request).exposition(), media_type=CONTENT_TYPE)
