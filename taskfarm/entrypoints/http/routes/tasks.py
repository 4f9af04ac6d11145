"""Tasks: claim the next ones, read one, update one, keep one's lease."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from taskfarm.domain import InvalidInput, TaskChange
from taskfarm.entrypoints.http.parsing import choice, json_object, query_number
from taskfarm.entrypoints.http.representations import task_info, task_report
from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import farm, metrics

TASK_INFO = ("status", "percentCompleted")
TASK_FIELDS = ("percentCompleted", "status")
#: What a worker may say of how the command of an attempt went, beside the status it ends with.
OUTCOME_FIELDS = ("exitCode", "error")


def _worker_uuid(body: Mapping[str, Any]) -> str | None:
    worker_uuid = body.get("worker_uuid")
    if worker_uuid is not None and not isinstance(worker_uuid, str):
        raise InvalidInput("worker_uuid must be a string")
    return worker_uuid


def _holder(body: Mapping[str, Any]) -> str:
    """The registered worker that claims tasks, or holds them."""
    worker_uuid = _worker_uuid(body)
    if worker_uuid is None:
        raise InvalidInput("worker_uuid cannot be null: name the registered worker")
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
    guarded, run = farm(request), request.path_params["uuid"]
    tasks = await guarded.claim(run, _holder(body))
    metrics(request).count_claim(len(tasks))
    if not tasks:
        return Response(status_code=204)
    inputs = await guarded.inputs_of(run, tasks)
    return JSONResponse(task_info(tasks[0], inputs), status_code=201)


async def claim_tasks(request: Request) -> Response:
    """Up to `count` tasks in one request, each exactly-once as with single claims; 204 when
    nothing is left. With `done`, the tasks of the worker's it lists are marked done at 100%
    first, as updates naming the worker would (those it no longer holds are left alone and
    listed in `lost`); `count` may then be 0, and the answer always has a body.
    ---
    summary: Claim several tasks, reporting others done
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/BatchClaim'
    responses:
      200:
        description: the tasks reported were dealt with; nothing is left to hand out, or
          none was asked for
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Exchange'
      201:
        description: the tasks, now computing for the worker
        content:
          application/json:
            schema:
              oneOf:
                - $ref: '#/components/schemas/Tasks'
                - $ref: '#/components/schemas/Exchange'
      204:
        description: nothing is left to hand out
    """
    body = await json_object(request, required=["worker_uuid"], optional=["count", "done"])
    guarded, run = farm(request), request.path_params["uuid"]
    if "done" in body:
        exchange = await guarded.finish_and_claim(
            run, _holder(body), body["done"], body.get("count", 0)
        )
        tasks, lost = exchange.claimed, {"lost": exchange.lost}
    else:
        tasks, lost = await guarded.claim(run, _holder(body), body.get("count", 1)), None
    metrics(request).count_claim(len(tasks))
    if not tasks and lost is None:
        return Response(status_code=204)
    inputs = await guarded.inputs_of(run, tasks)
    shown = [
        task_info(task, None if inputs is None else [one])
        for task, one in zip(tasks, inputs or [None] * len(tasks), strict=True)
    ]
    return JSONResponse({"tasks": shown, **(lost or {})}, status_code=201 if tasks else 200)


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
    guarded, run, index = farm(request), *request.path_params.values()
    task = guarded.get_task(run, index)
    if info == "":
        return JSONResponse(task_info(task, guarded.task_inputs(run, [index])))
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
    body = await json_object(request, optional=[*TASK_FIELDS, *OUTCOME_FIELDS, "worker_uuid"])
    if not any(field in body for field in TASK_FIELDS):
        raise InvalidInput("nothing to change: send percentCompleted and/or status")
    nulls = [key for key, value in body.items() if value is None]
    if nulls:
        raise InvalidInput(f"{', '.join(nulls)} cannot be null")
    change = TaskChange.from_fields(
        body.get("percentCompleted"), body.get("status"), body.get("exitCode"), body.get("error")
    )
    await run_in_threadpool(
        farm(request).update_task,
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
        farm(request).heartbeat,
        request.path_params["uuid"],
        request.path_params["index"],
        _worker_uuid(body),
    )
    return Response(status_code=204)


async def renew_leases(request: Request) -> Response:
    """Renews the leases of many tasks the worker holds, as a heartbeat of each would: one
    request per beat, however many tasks the worker holds. Those it no longer holds (another
    worker has them, or they are not computing) are left as they are, and listed in `lost`.
    ---
    summary: Renew the leases of a worker's tasks
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Heartbeats'
    responses:
      200:
        description: renewed, but for those in `lost`
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/LostTasks'
    """
    body = await json_object(request, required=["worker_uuid", "tasks"])
    lost = await run_in_threadpool(
        farm(request).renew_leases, request.path_params["uuid"], _holder(body), body["tasks"]
    )
    return JSONResponse({"lost": lost})


def list_tasks(request: Request) -> Response:
    """The run's tasks in one status, in index order, a page at a time, each with the record
    of its last attempt. A page may hold fewer than `limit` tasks and still have a next one:
    follow `next` until it is null.
    ---
    summary: List a run's tasks by status
    parameters:
      - name: status
        in: query
        required: true
        schema:
          enum: ['waiting', 'computing', 'done', 'failed']
      - name: after
        in: query
        required: false
        description: the `next` of the page before; absent, the first page
        schema:
          type: integer
          minimum: -1
          maximum: 9007199254740992
          default: -1
      - name: limit
        in: query
        required: false
        schema:
          type: integer
          minimum: 1
          maximum: 1000
          default: 100
    responses:
      200:
        description: a page of the run's tasks in that status
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/TaskPage'
    """
    query = request.query_params
    if "status" not in query:
        raise InvalidInput("say which tasks to list: status=waiting, computing, done or failed")
    listed = farm(request).list_tasks(
        request.path_params["uuid"],
        query["status"],
        query_number(request, "after", -1),
        query_number(request, "limit", 100),
    )
    return JSONResponse(
        {
            "tasks": [
                task_report(report, listed.workers, listed.inputs and [listed.inputs[i]])
                for i, report in enumerate(listed.page.reports)
            ],
            "next": listed.page.next_after,
        }
    )


class TaskResource(HTTPEndpoint):
    """One task: its methods share a path, so that 405 answers name them all in `Allow`."""

    get = staticmethod(get_task)
    put = staticmethod(update_task)
