"""The OpenAPI document matches the routes, and the API keeps to it under generated requests.

`make test` runs a bounded number of examples per operation; `make fuzz` sets
TASKFARM_FUZZ_EXAMPLES far higher.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from typing import Any

import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import negative_data_rejection, positive_data_acceptance
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import LOGIN_WINDOW, WorkerRegistration
from taskfarm.entrypoints.http import create_app
from tests.fakes import FakeClock, FakeHasher

HTTP_VERBS = ("get", "put", "post", "delete", "patch")
EXAMPLES = int(os.environ.get("TASKFARM_FUZZ_EXAMPLES", "30"))
USER, PASSWORD = "fuzzer", "not so secret"
AUTHORIZATION = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


#: Its clock moves on past the window of failed logins before each request: the checks of
#: wrong credentials get their 401, not the 429 that would follow ten of them.
clock = FakeClock()


def _app_with_data() -> object:
    services = bootstrap(
        Settings(database_url="memory://"),
        storage=MemoryStorage(),
        hasher=FakeHasher(),
        clock=clock,
    )
    services.accounts.add_user(USER, PASSWORD)
    services.taskfarm.register_worker(WorkerRegistration("worker", "node", 1), owner=USER)
    services.taskfarm.create_run(10, lease_seconds=60, max_attempts=3, owner=USER)
    return create_app(services)


# Newline-delimited JSON is text, as text/plain is.
schemathesis.serializer.alias("application/x-ndjson", "text/plain")

app = _app_with_data()
schema = schemathesis.openapi.from_asgi("/api/openapi.json", app)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_keeps_to_the_document(case: schemathesis.Case[Any]) -> None:
    # A document cannot say all that makes an input: that an upload's lines hold JSON, that
    # no string deep inside an input holds NUL, that it fits in 64 KiB. Such requests are
    # schema-valid and refused, with a 400 that says why.
    # An upload's body is text, whatever it holds: no text is schema-violating to it.
    excluded = []
    if case.method == "POST" and case.path in ("/api/run", "/api/run/upload"):
        excluded.append(positive_data_acceptance)
    if case.method == "POST" and case.path == "/api/run/upload":
        excluded.append(negative_data_rejection)
    clock.advance(LOGIN_WINDOW)
    case.call_and_validate(headers={"Authorization": AUTHORIZATION}, excluded_checks=excluded)


def _routes(routes: Sequence[BaseRoute], prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Mount):
            found |= _routes(route.routes, prefix + route.path)
        elif isinstance(route, Route):
            path = (prefix + route.path).replace(":str}", "}").replace(":int}", "}")
            if route.methods is None:  # an HTTPEndpoint: its methods are its handlers
                methods = {verb for verb in HTTP_VERBS if hasattr(route.endpoint, verb)}
            else:
                methods = {method.lower() for method in route.methods} - {"head"}
            found |= {(path, method) for method in methods}
    return found


def test_the_document_describes_every_route_and_nothing_else() -> None:
    with TestClient(app) as client:  # type: ignore[arg-type]
        document = client.get("/api/openapi.json").json()
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    assert documented == _routes(app.routes)  # type: ignore[attr-defined]
    assert document["openapi"].startswith("3.1")
