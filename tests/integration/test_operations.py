"""Health checks and the access log, through Starlette's TestClient on a memory store."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import StorageError
from taskfarm.entrypoints.http import create_app
from taskfarm.entrypoints.logs import JsonFormatter
from tests.fakes import FakeHasher

USER, PASSWORD = "alice", "wonderland"


class UnreachableStorage(MemoryStorage):
    """A store whose database has gone away."""

    def ping(self) -> None:
        raise StorageError("connection refused")


def _client(storage: MemoryStorage) -> TestClient:
    services = bootstrap(Settings(database_url="memory://"), storage=storage, hasher=FakeHasher())
    services.accounts.add_user(USER, PASSWORD)
    return TestClient(create_app(services))


@pytest.fixture
def client() -> Iterator[TestClient]:
    with _client(MemoryStorage()) as client:
        yield client


def test_healthz_answers_ok_without_credentials(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_answers_ready_when_the_database_answers(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}


def test_readyz_is_503_with_a_detail_when_the_database_does_not_answer() -> None:
    with _client(UnreachableStorage()) as client:
        ready, alive = client.get("/readyz"), client.get("/healthz")
    assert ready.status_code == 503
    assert "database" in ready.json()["detail"]
    assert alive.status_code == 200


def test_access_log_names_method_route_template_status_and_time(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    run = client.post("/api/run", json={"numTasks": 3}, auth=(USER, PASSWORD)).json()
    with caplog.at_level(logging.INFO, logger="taskfarm.access"):
        client.get(f"/api/runs/{run['uuid']}", auth=(USER, PASSWORD))
        client.get("/no/such/page")
    found, missing = (r for r in caplog.records if r.name == "taskfarm.access")
    assert (found.method, found.route, found.status) == ("GET", "/api/runs/{uuid}", 200)  # type: ignore[attr-defined]
    assert found.ms >= 0  # type: ignore[attr-defined]
    assert run["uuid"] not in found.getMessage()
    assert found.getMessage().startswith("GET /api/runs/{uuid} 200 ")
    assert (missing.route, missing.status) == ("/no/such/page", 404)  # type: ignore[attr-defined]


def test_json_log_format_writes_one_parseable_object_per_line(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("taskfarm.access")
    access.addHandler(handler)
    level = access.level
    access.setLevel(logging.INFO)
    try:
        client.get("/healthz")
        client.get("/api/runs")
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("GET", "/healthz", 200),
        ("GET", "/api/{path}", 401),  # refused before routing: the API mount's template
    ]
    assert all(line["logger"] == "taskfarm.access" and line["ms"] >= 0 for line in lines)
