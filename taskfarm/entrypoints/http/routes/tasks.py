"""Tasks: claim the next one, read one, update one."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from taskfarm.domain import InvalidInput, TaskChange
from taskfarm.entrypoints.http.parsing import choice, json_object
from taskfarm.entrypoints.http.representations import task_info
from taskfarm.entrypoints.http.services import services

TASK_INFO = ("status", "percentCompleted")


async def claim_task(request: Request) -> Response:
    body = await json_object(request, required=["worker_uuid"])
    worker_uuid = body["worker_uuid"]
    if not isinstance(worker_uuid, str):
        raise InvalidInput("worker_uuid must be a string")
    task = await run_in_threadpool(
        services(request).taskfarm.claim_task, request.path_params["uuid"], worker_uuid
    )
    if task is None:
        return Response(status_code=204)
    return JSONResponse(task_info(task), status_code=201)


def get_task(request: Request) -> Response:
    info = choice(request, "info", ("", *TASK_INFO), default="")
    task = services(request).taskfarm.get_task(
        request.path_params["uuid"], request.path_params["index"]
    )
    if info == "":
        return JSONResponse(task_info(task))
    return JSONResponse({info: task_info(task)[info]})


async def update_task(request: Request) -> Response:
    body = await json_object(request, optional=TASK_INFO)
    if not body:
        raise InvalidInput("nothing to change: send percentCompleted and/or status")
    nulls = [key for key, value in body.items() if value is None]
    if nulls:
        raise InvalidInput(f"{', '.join(nulls)} cannot be null")
    change = TaskChange.from_fields(body.get("percentCompleted"), body.get("status"))
    await run_in_threadpool(
        services(request).taskfarm.update_task,
        request.path_params["uuid"],
        request.path_params["index"],
        change,
    )
    return Response(status_code=204)
