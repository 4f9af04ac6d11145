"""Workers and tokens: who is asking."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from taskfarm.domain import WorkerRegistration
from taskfarm.entrypoints.http.parsing import json_object
from taskfarm.entrypoints.http.representations import worker_summary
from taskfarm.entrypoints.http.services import services


async def register_worker(request: Request) -> Response:
    body = await json_object(request, required=["uuid", "hostname", "pid"])
    registration = WorkerRegistration.from_fields(body["uuid"], body["hostname"], body["pid"])
    worker = await run_in_threadpool(services(request).taskfarm.register_worker, registration)
    return JSONResponse(worker_summary(worker), status_code=201)


def get_token(request: Request) -> Response:
    token = services(request).accounts.issue_token(request.scope["user"])
    return JSONResponse({"token": token})
