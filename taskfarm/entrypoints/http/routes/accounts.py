"""Workers and tokens: who is asking, and the worker tokens they carry."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.endpoints import HTTPEndpoint
from starlette.requests import Request
from starlette.responses import Response

from taskfarm.domain import InvalidInput, WorkerRegistration
from taskfarm.entrypoints.http.auth import basic_credentials
from taskfarm.entrypoints.http.parsing import json_object
from taskfarm.entrypoints.http.representations import worker_status, worker_summary, worker_token
from taskfarm.entrypoints.http.responses import JSONResponse
from taskfarm.entrypoints.http.services import caller, farm, services


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
    worker = await run_in_threadpool(farm(request).register_worker, registration)
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
    statuses = farm(request).list_workers()
    return JSONResponse({"data": [worker_status(status) for status in statuses]})


def get_token(request: Request) -> Response:
    """A token to log in with instead of the password; with a worker token, that same token
    (it cannot make a broader one).
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
    who = caller(request)
    if who.run is not None:
        return JSONResponse({"token": basic_credentials(request.headers.get("authorization"))[0]})
    return JSONResponse({"token": services(request).accounts.issue_token(who.user)})


async def create_token(request: Request) -> Response:
    """Make a worker token: it may only claim, read, update and heartbeat the tasks of one run
    of yours, and read the run; it works until it expires or is revoked.
    ---
    summary: Make a worker token
    requestBody:
      required: true
      content:
        application/json:
          schema:
            $ref: '#/components/schemas/NewWorkerToken'
    responses:
      201:
        description: the token, shown this once
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/IssuedWorkerToken'
    """
    body = await json_object(request, required=["run"], optional=["name", "expiresSeconds"])
    if not isinstance(body["run"], str):
        raise InvalidInput(f"run is the uuid or name of a run, not {body['run']!r:.40}")
    issued = await run_in_threadpool(
        farm(request).create_token, body["run"], body.get("expiresSeconds"), body.get("name")
    )
    return JSONResponse({**worker_token(issued.token), "token": issued.secret}, status_code=201)


def list_tokens(request: Request) -> Response:
    """Your worker tokens (an admin's: everybody's), oldest first, without the tokens.
    ---
    summary: List worker tokens
    responses:
      200:
        description: the tokens
        content:
          application/json:
            schema:
              $ref: '#/components/schemas/WorkerTokens'
    """
    return JSONResponse({"data": [worker_token(token) for token in farm(request).list_tokens()]})


def revoke_token(request: Request) -> Response:
    """Revoke a worker token: every server process refuses it within a second.
    ---
    summary: Revoke a worker token
    responses:
      204:
        description: revoked
    """
    farm(request).revoke_token(request.path_params["token_id"])
    return Response(status_code=204)


class TokensResource(HTTPEndpoint):
    """Worker tokens: made and listed at one path, so that 405 answers name both in `Allow`."""

    get = staticmethod(list_tokens)
    post = staticmethod(create_token)
