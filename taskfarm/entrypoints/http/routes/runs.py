"""Runs: create, list, inspect, restart, delete."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from taskfarm.entrypoints.http.parsing import choice, json_object
from taskfarm.entrypoints.http.representations import run_info, run_progress, run_summary
from taskfarm.entrypoints.http.services import services

RUN_INFO = ("percentDone", "numWaiting", "numDone", "numComputing")


async def create_run(request: Request) -> Response:
    body = await json_object(request, required=["numTasks"])
    run = await run_in_threadpool(services(request).taskfarm.create_run, body["numTasks"])
    return JSONResponse(run_summary(run), status_code=201)


def list_runs(request: Request) -> Response:
    runs = services(request).taskfarm.list_runs()
    return JSONResponse({"data": [run_summary(run) for run in runs]})


def get_run(request: Request) -> Response:
    info = choice(request, "info", ("", *RUN_INFO), default="")
    run = services(request).taskfarm.get_run(request.path_params["uuid"])
    if info == "":
        return JSONResponse(run_info(run))
    return JSONResponse({info: run_progress(run)[info]})


def delete_run(request: Request) -> Response:
    services(request).taskfarm.delete_run(request.path_params["uuid"])
    return Response(status_code=204)


def restart_run(request: Request) -> Response:
    everything = choice(request, "all", ("False", "True"), default="False") == "True"
    services(request).taskfarm.restart_run(request.path_params["uuid"], everything=everything)
    return Response(status_code=204)
