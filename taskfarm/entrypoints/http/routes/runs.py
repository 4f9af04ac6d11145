"""Runs: create, list, inspect, restart, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from taskfarm.domain import InputKind, InvalidInput, check_task_indices
from taskfarm.entrypoints.http.parsing import choice, json_object, query_number
from taskfarm.entrypoints.http.representations import run_info, run_progress, run_summary
from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import farm
from taskfarm.entrypoints.http.uploads import NDJSON, TEXT_LINES, lines, ndjson_values

RUN_INFO = ("percentDone", "numWaiting", "numDone", "numComputing", "numFailed")


def _query_field(request: Request, name: str) -> int | None:
    value = request.query_params.get(name)
    return None if value is None else query_number(request, name, 0)


async def _each(values: list[object]) -> AsyncIterator[object]:
    for value in values:
        yield value


async def create_run(request: Request) -> Response:
    """Create a run: of numTasks tasks, of one task per element of `inputs` (its input), or
    of one task per combination of a sweep's axes.
    ---
    summary: Create a run
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/NewRun'
    responses:
      201:
        description: the run
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/RunSummary'
      409:
        description: another run has that name
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
    """
    body = await json_object(
        request,
        optional=["numTasks", "inputs", "sweep", "leaseSeconds", "maxAttempts", "name"],
    )
    guarded = farm(request)
    policy = [body.get(field) for field in ("leaseSeconds", "maxAttempts", "name")]
    if "inputs" not in body:
        run = await run_in_threadpool(
            lambda: guarded.create_run(body.get("numTasks"), *policy, sweep=body.get("sweep"))
        )
    elif "numTasks" in body or "sweep" in body or not isinstance(body["inputs"], list):
        raise InvalidInput(
            "inputs must be a list of JSON values, one task each, without numTasks or a sweep"
        )
    else:
        run = await guarded.create_run_of_inputs(_each(body["inputs"]), InputKind.JSON, *policy)
    return JSONResponse(run_summary(run), status_code=201)


async def upload_run(request: Request) -> Response:
    """Create a run of one task per line of the body, which is read as it arrives: a run of
    millions of inputs takes the server's memory of one.
    ---
    summary: Create a run of many inputs, uploaded
    parameters:
      - {name: name, in: query, required: false, schema: {$ref: '#/components/schemas/RunName'}}
      - name: leaseSeconds
        in: query
        required: false
        schema: {type: integer, minimum: 1, maximum: 604800}
      - name: maxAttempts
        in: query
        required: false
        schema: {type: integer, minimum: 1, maximum: 1000000}
    requestBody:
      required: true
      content:
        text/plain:
          schema:
            type: string
            description: one input per line, a string; lines with nothing on them are skipped
        application/x-ndjson:
          schema:
            type: string
            description: one input per line, a JSON value
    responses:
      201:
        description: the run
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/RunSummary'
      409:
        description: another run has that name
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
      415:
        description: the body is neither text/plain nor application/x-ndjson
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Error'
    """
    content_type = request.headers.get("content-type", "").partition(";")[0].strip()
    if content_type not in (TEXT_LINES, NDJSON):
        raise HTTPException(
            415, f"send the inputs as {TEXT_LINES} (one per line) or {NDJSON} (JSON per line)"
        )
    lines_of, kind = (
        (lines, InputKind.LINES) if content_type == TEXT_LINES else (ndjson_values, InputKind.JSON)
    )
    run = await farm(request).create_run_of_inputs(
        lines_of(request.stream()),
        kind,
        _query_field(request, "leaseSeconds"),
        _query_field(request, "maxAttempts"),
        request.query_params.get("name"),
    )
    return JSONResponse(run_summary(run), status_code=201)


def list_runs(request: Request) -> Response:
    """Every run, in creation order, with its progress (which the published client, reading
    `id`, `uuid` and `numTasks`, leaves alone).
    ---
    summary: List runs
    responses:
      200:
        description: the runs
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Runs'
    """
    runs = farm(request).list_runs()
    return JSONResponse({"data": [{**run_summary(run), **run_progress(run)} for run in runs]})


def get_run(request: Request) -> Response:
    """A run and its progress, or one item of it.
    ---
    summary: Inspect a run
    parameters:
      - name: info
        in: query
        required: false
        schema:
          enum: ['', 'percentDone', 'numWaiting', 'numDone', 'numComputing', 'numFailed']
          default: ''
    responses:
      200:
        description: the run's information, or the one item asked for (`RunInfoItem`)
        content:
          application/json:
            schema:
              oneOf:
                - $ref: '#/components/schemas/RunInfo'
                - $ref: '#/components/schemas/RunInfoItem'
    """
    info = choice(request, "info", ("", *RUN_INFO), default="")
    run = farm(request).get_run(request.path_params["uuid"])
    if info == "":
        return JSONResponse(run_info(run))
    return JSONResponse({info: run_progress(run)[info]})


def delete_run(request: Request) -> Response:
    """Delete a run and its tasks.
    ---
    summary: Delete a run
    responses:
      204:
        description: deleted
    """
    farm(request).delete_run(request.path_params["uuid"])
    return Response(status_code=204)


def restart_run(request: Request) -> Response:
    """Put unfinished tasks (or, with all=True, every task) back to waiting.
    ---
    summary: Restart a run
    parameters:
      - name: all
        in: query
        required: false
        schema:
          enum: ['False', 'True']
          default: 'False'
    responses:
      204:
        description: restarted
    """
    everything = choice(request, "all", ("False", "True"), default="False") == "True"
    farm(request).restart_run(request.path_params["uuid"], everything=everything)
    return Response(status_code=204)


async def retry_run(request: Request) -> Response:
    """Put the run's failed tasks, or the finished ones among the indices `tasks`, back to
    waiting with fresh attempts, at 0%; tasks computing or waiting are left alone.
    ---
    summary: Retry failed (or chosen) tasks
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/Retry'
    responses:
      200:
        description: how many tasks went back to waiting
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/Retried'
    """
    body = await json_object(request, optional=["status", "tasks"])
    if ("status" in body) == ("tasks" in body):
        raise InvalidInput('say which tasks to retry: {"status": "failed"} or {"tasks": [...]}')
    if "status" in body and body["status"] != "failed":
        raise InvalidInput(f"only failed tasks are retried by status, not {body['status']!r}")
    # Tasks given as null are not every failed task: the list is checked here.
    tasks = check_task_indices(body["tasks"]) if "tasks" in body else None
    retried = await run_in_threadpool(farm(request).retry, request.path_params["uuid"], tasks)
    return JSONResponse({"retried": retried})


class RunResource(HTTPEndpoint):
    """One run: its methods share a path, so that 405 answers name them all in `Allow`."""

    get = staticmethod(get_run)
    delete = staticmethod(delete_run)
