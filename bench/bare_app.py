"""The ceiling of the HTTP tier: Starlette under uvicorn answering the claim route with a
fixed task, doing no work at all (no authentication, no body parsing, no database)."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

TASK = {"id": 0, "task": 0, "percentCompleted": 0.0, "status": "computing"}


async def index(request: Request) -> Response:
    return PlainTextResponse("bare")


async def claim(request: Request) -> Response:
    return JSONResponse(TASK, status_code=201)


def create_app() -> Starlette:
    return Starlette(
        routes=[
            Route("/", index, methods=["GET"]),
            Route("/api/runs/{uuid:str}/task", claim, methods=["POST"]),
        ]
    )
