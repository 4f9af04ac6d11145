"""Which requests the fast lane takes, and the scope it makes for them."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from starlette.responses import Response
from starlette.routing import Route

from taskfarm.entrypoints.http.app import CLAIM_ROUTES
from taskfarm.entrypoints.http.fast_lane import FastLane
from taskfarm.entrypoints.http.responses import JSONResponse


def _scope(path: str, *, query: bytes = b"", length: bytes | None = b"20") -> dict[str, Any]:
    headers = [(b"host", b"x"), (b"authorization", b"Basic " + base64.b64encode(b"t:"))]
    if length is not None:
        headers.append((b"content-length", length))
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "root_path": "",
        "query_string": query,
        "headers": headers,
    }


def _lane() -> FastLane:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    return FastLane(
        app,
        prefix="/api",
        routes=CLAIM_ROUTES,
        checks=None,  # type: ignore[arg-type]
        max_body_bytes=100,
        handlers={},
    )


@pytest.mark.parametrize(
    ("path", "route"),
    [("/api/runs/r/task", CLAIM_ROUTES[0]), ("/api/runs/r/tasks/claim", CLAIM_ROUTES[1])],
)
def test_the_fast_lane_takes_the_claims_with_the_scope_the_mount_would_make(
    path: str, route: Route
) -> None:
    scope = _scope(path)
    assert _lane()._route(scope) is route
    assert scope["path_params"] == {"uuid": "r"}
    assert (scope["root_path"], scope["app_root_path"]) == ("/api", "")
    assert scope["endpoint"] is route.endpoint


@pytest.mark.parametrize(
    "scope",
    [
        _scope("/api/runs/r/tasks/0"),
        _scope("/api/runs/r/task", query=b"all=1"),
        _scope("/api/runs/r/task", length=None),
        _scope("/api/runs/r/task", length=b"101"),
        _scope("/api/runs/r/task", length=b"-1"),
        _scope("/runs/r/task"),
        {**_scope("/api/runs/r/task"), "method": "GET"},
    ],
    ids=["another route", "a query", "no length", "too long", "a bad length", "no prefix", "GET"],
)
def test_the_fast_lane_passes_on_every_other_request(scope: dict[str, Any]) -> None:
    assert _lane()._route(scope) is None


def test_an_error_no_handler_takes_goes_up_as_from_any_other_route() -> None:
    async def endpoint(request: Any) -> Any:
        raise RuntimeError("a bug")

    class Checks:
        async def caller(self, scope: Any) -> str:
            return "someone"

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    lane = FastLane(
        app,
        prefix="/api",
        routes=[Route("/runs/{uuid:str}/task", endpoint, methods=["POST"])],
        checks=Checks(),  # type: ignore[arg-type]
        max_body_bytes=100,
        handlers={ValueError: lambda request, error: Response(status_code=400)},
    )

    async def receive() -> Any:
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message: Any) -> None:
        raise AssertionError("nothing is sent: the server error middleware answers")

    with pytest.raises(RuntimeError, match="a bug"):
        asyncio.run(lane(_scope("/api/runs/r/task"), receive, send))


def test_an_answer_orjson_cannot_render_is_rendered_by_the_standard_library() -> None:
    content = {"big": 2**70, "text": "é"}
    assert (
        JSONResponse(content).body
        == json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode()
    )
