"""Health checks for load balancers and orchestrators: public, cheap, JSON."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import services


async def healthz(request: Request) -> Response:
    """Whether this process is up; it asks nothing of the database.
    ---
    summary: Liveness
    responses:
      200:
        description: the process serves requests
        content:
          application/json:
            schema:
              type: object
              required: [status]
              properties:
                status:
                  const: ok
    """
    return JSONResponse({"status": "ok"})


def readyz(request: Request) -> Response:
    """Whether this process can serve the API: its database answers. A StorageError becomes
    the 503 of the error table.
    ---
    summary: Readiness
    responses:
      200:
        description: the database answers
        content:
          application/json:
            schema:
              type: object
              required: [status]
              properties:
                status:
                  const: ready
      503:
        description: the database does not answer; `detail` says so
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
    """
    services(request).storage.ping()
    return JSONResponse({"status": "ready"})
