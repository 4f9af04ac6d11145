"""Runs: create, list, inspect, restart, delete."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from taskfarm.domain import InvalidInput, check_task_indices
from taskfarm.entrypoints.http.parsing import choice, json_object
from taskfarm.entrypoints.http.representations import run_info, run_progress, run_summary
from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import services

RUN_INFO = ("percentDone", "numWaiting", "numDone", "numComputing", "numFailed")


async def create_run(request: Request) -> Response:
    """Create a run.
    ---
    summary: Create a run of numTasks tasks
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
        request, required=["numTasks"], optional=["leaseSeconds", "maxAttempts", "name"]
    )
    run = await run_in_threadpool(
        services(request).taskfarm.create_run,
        body["numTasks"],
        body.get("leaseSeconds"),
        body.get("maxAttempts"),
        body.get("name"),
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
    runs = services(request).taskfarm.list_runs()
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
    run = services(request).taskfarm.get_run(request.path_params["uuid"])
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
    services(request).taskfarm.delete_run(request.path_params["uuid"])
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
    services(request).taskfarm.restart_run(request.path_params["uuid"], everything=everything)
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
    retried = await run_in_threadpool(
        services(request).taskfarm.retry, request.path_params["uuid"], tasks
    )
    return JSONResponse({"retried": retried})


class RunResource(HTTPEndpoint):
    """One run: its methods share a path, so that 405 answers name them all in `Allow`."""

    get = staticmethod(get_run)
    delete = staticmethod(delete_run)
