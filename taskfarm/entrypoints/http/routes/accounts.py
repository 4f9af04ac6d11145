"""Workers and tokens: who is asking."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from taskfarm.domain import WorkerRegistration
from taskfarm.entrypoints.http.parsing import json_object
from taskfarm.entrypoints.http.representations import worker_status, worker_summary
from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import services


async def register_worker(request: Request) -> Response:
    """Register a worker; registering the same worker again is harmless.
    ---
    summary: Register a worker
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/WorkerRegistration'
    responses:
      201:
        description: the worker
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/WorkerSummary'
      409:
        description: the uuid belongs to a worker with another hostname or pid
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
    """
    body = await json_object(request, required=["uuid", "hostname", "pid"])
    registration = WorkerRegistration.from_fields(body["uuid"], body["hostname"], body["pid"])
    worker = await run_in_threadpool(services(request).taskfarm.register_worker, registration)
    return JSONResponse(worker_summary(worker), status_code=201)


def list_workers(request: Request) -> Response:
    """Every worker, when it was last heard from and how many tasks it holds.
    ---
    summary: List workers
    responses:
      200:
        description: the workers
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Workers'
    """
    statuses = services(request).taskfarm.list_workers()
    return JSONResponse({"data": [worker_status(status) for status in statuses]})


def get_token(request: Request) -> Response:
    """A token to log in with instead of the password.
    ---
    summary: Get a token
    responses:
      200:
        description: the token
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Token'
    """
    token = services(request).accounts.issue_token(request.scope["user"])
    return JSONResponse({"token": token})
