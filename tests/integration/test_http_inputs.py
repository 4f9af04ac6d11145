"""Runs over inputs through the API: made from a list, a sweep or an upload, each claimed task
carrying its input, and every bad input a 400 that leaves nothing behind."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import Services, bootstrap
from taskfarm.config import Settings
from taskfarm.domain import MAX_INPUT_BYTES
from taskfarm.entrypoints.http import create_app
from tests.fakes import FakeClock, FakeHasher

USER, PASSWORD = "ada", "analytical engine"


@pytest.fixture
def storage() -> MemoryStorage:
    return MemoryStorage()


@pytest.fixture
def client(storage: MemoryStorage) -> Iterator[TestClient]:
    services: Services = bootstrap(
        Settings(database_url="memory://"), storage=storage, clock=FakeClock(), hasher=FakeHasher()
    )
    services.accounts.add_user(USER, PASSWORD)
    with TestClient(create_app(services)) as client:
        client.auth = (USER, PASSWORD)
        client.post("/api/worker", json={"uuid": "w", "hostname": "node", "pid": 1})
        yield client


def claim_all(client: TestClient, run: str) -> list[dict[str, Any]]:
    answer = client.post(f"/api/runs/{run}/tasks/claim", json={"worker_uuid": "w", "count": 50})
    assert answer.status_code == 201
    return list(answer.json()["tasks"])


def upload(client: TestClient, body: bytes, content_type: str = "text/plain", **query: str) -> Any:
    return client.post(
        "/api/run/upload", content=body, headers={"Content-Type": content_type}, params=query
    )


def test_a_run_of_a_list_hands_each_task_its_element(client: TestClient) -> None:
    elements = ["a.txt", {"seed": 3}, [1, 2], 7.5, True]
    run = client.post("/api/run", json={"inputs": elements, "name": "listed"}).json()
    assert run["numTasks"] == 5

    claimed = claim_all(client, "listed")
    assert [task["input"] for task in claimed] == elements
    single = client.get(f"/api/runs/{run['uuid']}/tasks/1").json()
    assert single["input"] == {"seed": 3}
    assert client.get(f"/api/runs/{run['uuid']}").json()["inputs"] == "json"


def test_a_plain_run_shows_no_input_anywhere(client: TestClient) -> None:
    run = client.post("/api/run", json={"numTasks": 2}).json()["uuid"]
    assert all("input" not in task for task in claim_all(client, run))
    assert "input" not in client.get(f"/api/runs/{run}/tasks/0").json()
    assert "inputs" not in client.get(f"/api/runs/{run}").json()
    listed = client.get(f"/api/runs/{run}/tasks", params={"status": "computing"}).json()
    assert all("input" not in task for task in listed["tasks"])


def test_a_sweep_hands_out_every_combination_first_axis_slowest(client: TestClient) -> None:
    run = client.post("/api/run", json={"sweep": {"a": [1, 2, 3], "b": ["x", "y"]}}).json()
    assert run["numTasks"] == 6
    assert [task["input"] for task in claim_all(client, run["uuid"])] == [
        {"a": a, "b": b} for a in (1, 2, 3) for b in ("x", "y")
    ]


def test_a_sweep_of_a_billion_combinations_is_made_at_once(client: TestClient) -> None:
    sweep = {f"p{i}": list(range(10)) for i in range(9)}
    run = client.post("/api/run", json={"sweep": sweep}).json()
    assert run["numTasks"] == 10**9
    task = client.get(f"/api/runs/{run['uuid']}/tasks/999999999").json()
    assert task["input"] == {f"p{i}": 9 for i in range(9)}


def test_an_upload_of_lines_makes_a_task_of_each_line_with_something_on_it(
    client: TestClient,
) -> None:
    body = b"first\r\n\n  \nsecond line\nlast without an end"
    made = upload(client, body, name="uploaded", maxAttempts="2")
    assert made.status_code == 201, made.text
    assert made.json()["numTasks"] == 3
    assert [task["input"] for task in claim_all(client, "uploaded")] == [
        "first",
        "second line",
        "last without an end",
    ]
    assert client.get("/api/runs/uploaded").json()["maxAttempts"] == 2
    failed = client.put("/api/runs/uploaded/tasks/1", json={"status": "failed", "worker_uuid": "w"})
    assert failed.status_code == 204
    listed = client.get("/api/runs/uploaded/tasks", params={"status": "waiting"}).json()
    assert [(task["task"], task["input"]) for task in listed["tasks"]] == [(1, "second line")]


def test_an_upload_of_json_lines_makes_a_task_of_each_value(client: TestClient) -> None:
    made = upload(client, b'{"f": 1}\n"two"\n\n[3]\n', "application/x-ndjson")
    assert made.status_code == 201, made.text
    assert [task["input"] for task in claim_all(client, made.json()["uuid"])] == [
        {"f": 1},
        "two",
        [3],
    ]


@pytest.mark.parametrize(
    ("body", "content_type", "problem"),
    [
        (b"ok\nbad \xff byte\n", "text/plain", "line 2502 of the inputs is not UTF-8"),
        (b'{"a": 1}\n{oops\n', "application/x-ndjson", "line 2502 of the inputs is not one JSON"),
        (b'"fine"\nnull\n', "application/x-ndjson", "may not be null"),
        (b"a\x00b\n", "text/plain", "NUL"),
        (b"x" * (MAX_INPUT_BYTES + 10) + b"\n", "text/plain", f"at most {MAX_INPUT_BYTES}"),
    ],
)
def test_a_bad_upload_is_a_400_that_names_the_problem_and_leaves_nothing(
    client: TestClient, storage: MemoryStorage, body: bytes, content_type: str, problem: str
) -> None:
    # Past the first chunks, which are stored by then.
    good = b"good line\n" if content_type == "text/plain" else b'"good"\n'
    refused = upload(client, good * 2500 + body, content_type, name="never")
    assert refused.status_code == 400
    assert problem in refused.json()["detail"]
    assert client.get("/api/runs").json()["data"] == []
    assert client.get("/api/runs/never").status_code == 404
    assert storage.runs._staged == {}  # what was staged before the bad line is gone


def test_an_upload_without_an_input_is_a_400(client: TestClient) -> None:
    refused = upload(client, b"\n\n  \n")
    assert refused.status_code == 400
    assert "at least one input" in refused.json()["detail"]


@pytest.mark.parametrize(
    ("headers", "query", "status"),
    [
        ({"Content-Type": "application/json"}, {}, 415),
        ({"Content-Type": "text/plain"}, {"numTasks": "3"}, 400),
        ({"Content-Type": "text/plain"}, {"leaseSeconds": "soon"}, 400),
        ({"Content-Type": "text/plain"}, {"name": "0123456789abcdef0123456789abcdef"}, 400),
    ],
)
def test_an_upload_says_what_it_takes(
    client: TestClient, headers: dict[str, str], query: dict[str, str], status: int
) -> None:
    answer = client.post("/api/run/upload", content=b"a\n", headers=headers, params=query)
    assert answer.status_code == status
    assert answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"inputs": [1], "numTasks": 1}, "without numTasks"),
        ({"inputs": [1], "sweep": {"a": [1]}}, "without numTasks or a sweep"),
        ({"inputs": "abc"}, "must be a list"),
        ({"inputs": []}, "at least one input"),
        ({"inputs": [None]}, "may not be null"),
        ({"sweep": {"a": [1]}, "numTasks": 1}, "one of them"),
        ({}, "say what the run's tasks are"),
        ({"sweep": {"a-b": [1]}}, "axis is named"),
    ],
)
def test_a_run_of_inputs_that_would_not_do_is_a_400(
    client: TestClient, body: dict[str, Any], problem: str
) -> None:
    refused = client.post("/api/run", json=body)
    assert refused.status_code == 400
    assert problem in refused.json()["detail"]
    assert client.get("/api/runs").json()["data"] == []


def test_a_page_of_tasks_far_apart_reads_their_inputs_and_no_others(
    client: TestClient, storage: MemoryStorage
) -> None:
    made = upload(client, b"".join(b"line %d\n" % i for i in range(5000)), name="far")
    assert made.status_code == 201
    for index in (10, 2500, 4999):
        client.put(f"/api/runs/far/tasks/{index}", json={"status": "failed"})
    read: list[int] = []
    task_inputs = storage.runs.task_inputs

    def counted(run_uuid: str, indices: Any) -> list[str | None]:
        read.extend(indices)
        return task_inputs(run_uuid, indices)

    storage.runs.task_inputs = counted  # type: ignore[method-assign]
    listed = client.get("/api/runs/far/tasks", params={"status": "failed"}).json()["tasks"]
    assert [(task["task"], task["input"]) for task in listed] == [
        (10, "line 10"),
        (2500, "line 2500"),
        (4999, "line 4999"),
    ]
    assert sorted(read) == [10, 2500, 4999]
