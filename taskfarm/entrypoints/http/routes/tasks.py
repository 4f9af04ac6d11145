"""Tasks: claim the next ones, read one, update one, keep one's lease."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from taskfarm.domain import InvalidInput, TaskChange
from taskfarm.entrypoints.http.parsing import choice, json_object
from taskfarm.entrypoints.http.representations import task_info
from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import metrics, services

TASK_INFO = ("status", "percentCompleted")
TASK_FIELDS = ("percentCompleted", "status")


def _worker_uuid(body: Mapping[str, Any]) -> str | None:
    worker_uuid = body.get("worker_uuid")
    if worker_uuid is not None and not isinstance(worker_uuid, str):
        raise InvalidInput("worker_uuid must be a string")
    return worker_uuid


def _claimer(body: Mapping[str, Any]) -> str:
    worker_uuid = _worker_uuid(body)
    if worker_uuid is None:
        raise InvalidInput("worker_uuid cannot be null: claim as a registered worker")
    return worker_uuid


async def claim_task(request: Request) -> Response:
    """The published client's claim: one task, or 204.
    ---
    summary: Claim the next task
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Claim'
    responses:
      201:
        description: the task, now computing for the worker
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Task'
      204:
        description: nothing is left to hand out
    """
    body = await json_object(request, required=["worker_uuid"])
    tasks = await services(request).taskfarm.claim(request.path_params["uuid"], _claimer(body))
    metrics(request).count_claim(len(tasks))
    if not tasks:
        return Response(status_code=204)
    return JSONResponse(task_info(tasks[0]), status_code=201)


async def claim_tasks(request: Request) -> Response:
    """Up to `count` tasks in one request, each exactly-once as with single claims; 204 when
    nothing is left.
    ---
    summary: Claim several tasks
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/BatchClaim'
    responses:
      201:
        description: the tasks, now computing for the worker
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Tasks'
      204:
        description: nothing is left to hand out
    """
    body = await json_object(request, required=["worker_uuid"], optional=["count"])
    tasks = await services(request).taskfarm.claim(
        request.path_params["uuid"], _claimer(body), body.get("count", 1)
    )
    metrics(request).count_claim(len(tasks))
    if not tasks:
        return Response(status_code=204)
    return JSONResponse({"tasks": [task_info(task) for task in tasks]}, status_code=201)


def get_task(request: Request) -> Response:
    """A task, touched or not, or one item of it.
    ---
    summary: Inspect a task
    parameters:
      - name: info
        in: query
        required: false
        schema:
          enum: ['', 'status', 'percentCompleted']
          default: ''
    responses:
      200:
        description: the task, or the one item asked for (`TaskInfoItem`)
        content:
          application/json:
            schema:
              oneOf:
                - $ref: '#/components/schemas/Task'
                - $ref: '#/components/schemas/TaskInfoItem'
    """
    info = choice(request, "info", ("", *TASK_INFO), default="")
    task = services(request).taskfarm.get_task(
        request.path_params["uuid"], request.path_params["index"]
    )
    if info == "":
        return JSONResponse(task_info(task))
    return JSONResponse({info: task_info(task)[info]})


async def update_task(request: Request) -> Response:
    """Change a task's progress or status; renews its lease.
    ---
    summary: Update a task
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/TaskUpdate'
    responses:
      204:
        description: changed
      409:
        description: another worker holds the task
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
    """
    body = await json_object(request, optional=[*TASK_FIELDS, "worker_uuid"])
    if not any(field in body for field in TASK_FIELDS):
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
        _worker_uuid(body),
    )
    metrics(request).count_update(change)
    return Response(status_code=204)


async def heartbeat(request: Request) -> Response:
    """Renews the task's lease; with `worker_uuid`, only if that worker still holds it.
    ---
    summary: Renew a task's lease
    requestBody:
      required: false
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Heartbeat'
    responses:
      204:
        description: renewed
      409:
        description: another worker holds the task, or the task is not computing
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
    """
    body = await json_object(request, optional=["worker_uuid"]) if await request.body() else {}
    await run_in_threadpool(
        services(request).taskfarm.heartbeat,
        request.path_params["uuid"],
        request.path_params["index"],
        _worker_uuid(body),
    )
    return Response(status_code=204)


class TaskResource(HTTPEndpoint):
    """One task: its methods share a path, so that 405 answers name them all in `Allow`."""

    get = staticmethod(get_task)
    put = staticmethod(update_task)
