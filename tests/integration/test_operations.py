"""Health checks and the access log, through Starlette's TestClient on a memory store."""

from __future__ import annotations

import asyncio
import io
import json
import re
import select
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings
from taskfarm.domain import StorageError
from taskfarm.entrypoints.http import create_app
from taskfarm.entrypoints.http.access_log import AccessLog
from taskfarm.entrypoints.http.observe import Answered
from taskfarm.entrypoints.logs import JsonFormatter, TextFormatter
from tests.fakes import FakeHasher
from tests.integration.live_server import running_server

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


def _logged(formatter: TextFormatter) -> tuple[TestClient, io.StringIO]:
    """A client of an app that writes its access log to the string returned, in the
    formatter's format. Lines are written at the end of a turn of the event loop: all are
    there once the client is closed."""
    stream = io.StringIO()
    services = bootstrap(Settings(database_url="memory://"), hasher=FakeHasher())
    services.accounts.add_user(USER, PASSWORD)
    return TestClient(create_app(services, access_log=AccessLog(formatter, stream))), stream


def test_access_log_names_method_route_template_status_and_time() -> None:
    client, stream = _logged(TextFormatter())
    with client:
        run = client.post("/api/run", json={"numTasks": 3}, auth=(USER, PASSWORD)).json()
        client.get(f"/api/runs/{run['uuid']}", auth=(USER, PASSWORD))
        client.get("/no/such/page")
    created, found, missing = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}"
    assert re.fullmatch(stamp + r" INFO taskfarm\.access: POST /api/run 201 \d+\.\d\dms", created)
    assert re.fullmatch(
        stamp + r" INFO taskfarm\.access: GET /api/runs/\{uuid\} 200 [\d.]+ms", found
    )
    assert run["uuid"] not in found
    assert " GET /no/such/page 404 " in missing


def test_access_log_escapes_what_a_raw_path_could_forge_lines_with() -> None:
    client, stream = _logged(TextFormatter())
    with client:
        client.get("/forged%0A2026-01-01 00:00:00,000 INFO taskfarm.access: GET /%C3%A9")
    [line] = stream.getvalue().splitlines()
    forged = "2026-01-01 00:00:00,000 INFO taskfarm.access: GET /\\xe9"
    assert f" INFO taskfarm.access: GET /forged\\n{forged} 404 " in line


def test_json_log_format_writes_one_parseable_object_per_line() -> None:
    client, stream = _logged(JsonFormatter())
    with client:
        client.get("/healthz")
        client.get("/api/runs")
        client.get("/x%0Ay")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["method"], line["route"], line["status"]) for line in lines] == [
        ("GET", "/healthz", 200),
        ("GET", "/api/{path}", 401),  # refused before routing: the API mount's template
        ("GET", "/x\ny", 404),
    ]
    assert all(line["logger"] == "taskfarm.access" and line["ms"] >= 0 for line in lines)
    assert all(
        line["message"].startswith(f"GET {line['route']} {line['status']} ") for line in lines
    )


def test_access_lines_are_written_in_writes_that_each_land_whole() -> None:
    writes: list[str] = []

    class Recording(io.StringIO):
        def write(self, text: str) -> int:
            writes.append(text)
            return len(text)

    access_log = AccessLog(TextFormatter(), Recording())
    answered = Answered(method="GET", route="/healthz", path="/healthz", status=200, seconds=0.001)

    async def many_in_one_turn() -> None:
        for _ in range(100):
            access_log(answered)
        assert writes == []
        await asyncio.sleep(0)  # the turn ends: the lines are written

    asyncio.run(many_in_one_turn())
    assert "".join(writes).count("\n") == 100
    assert len(writes) > 1
    assert all(len(text.encode()) <= select.PIPE_BUF and text.endswith("\n") for text in writes)


def test_server_processes_write_whole_json_lines_to_their_shared_stderr(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    database_url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    with running_server(database_url, log, env={"TASKFARM_LOG_FORMAT": "json"}) as server:

        def probe(_: int) -> int:
            with urllib.request.urlopen(server.url + "healthz", timeout=10) as response:
                return int(response.status)

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(probe, range(400))) == {200}
    objects = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    probes = [line for line in objects if line.get("route") == "/healthz"]
    assert len(probes) == 400
    assert {line["logger"] for line in probes} == {"taskfarm.access"}
