"""The HTTP API through Starlette's TestClient: paths, JSON shapes, status codes, errors."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from taskfarm import __version__
from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import Services, bootstrap
from taskfarm.config import Settings
from taskfarm.entrypoints.http import create_app
from taskfarm.entrypoints.http.fast_lane import FastLane
from tests.fakes import FakeClock, FakeHasher

USER, PASSWORD = "alice", "wonderland"


@pytest.fixture
def services(clock: FakeClock) -> Services:
    services = bootstrap(
        Settings(database_url="memory://"),
        storage=MemoryStorage(),
        clock=clock,
        hasher=FakeHasher(),
    )
    services.accounts.add_user(USER, PASSWORD)
    return services


@pytest.fixture
def anonymous(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services)) as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    token = anonymous.get("/api/token", auth=(USER, PASSWORD)).json()["token"]
    anonymous.auth = (token, "")
    return anonymous


@pytest.fixture
def run_uuid(client: TestClient) -> str:
    return str(client.post("/api/run", json={"numTasks": 10}).json()["uuid"])


@pytest.fixture
def worker_uuid(client: TestClient) -> str:
    client.post("/api/worker", json={"uuid": "w-1", "hostname": "node1", "pid": 42})
    return "w-1"


def claim(client: TestClient, run_uuid: str, worker_uuid: str) -> Any:
    return client.post(f"/api/runs/{run_uuid}/task", json={"worker_uuid": worker_uuid})


def test_front_page_names_taskfarm_and_its_version(anonymous: TestClient) -> None:
    response = anonymous.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "taskfarm" in response.text
    assert __version__ in response.text


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/runs"),
        ("POST", "/api/run"),
        ("GET", "/api/token"),
        ("GET", "/api/runs/x/tasks/0"),
    ],
)
def test_api_needs_credentials(anonymous: TestClient, method: str, path: str) -> None:
    response = anonymous.request(method, path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")
    assert "detail" in response.json()


def test_password_and_token_both_authenticate(anonymous: TestClient) -> None:
    assert anonymous.get("/api/runs", auth=(USER, PASSWORD)).status_code == 200
    token = anonymous.get("/api/token", auth=(USER, PASSWORD)).json()["token"]
    assert anonymous.get("/api/runs", auth=(token, "")).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer abc",
        "Basic !!!notbase64",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        "Basic " + base64.b64encode(f"{USER}:wrong".encode()).decode(),
        "Basic " + base64.b64encode(b"nobody:wonderland").decode(),
        "Basic " + base64.b64encode(b"eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.:").decode(),
    ],
)
def test_bad_credentials_are_401_not_500(anonymous: TestClient, authorization: str) -> None:
    response = anonymous.get("/api/runs", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.json()["detail"]


def test_tampered_token_is_refused(anonymous: TestClient) -> None:
    token = anonymous.get("/api/token", auth=(USER, PASSWORD)).json()["token"]
    header, payload, signature = token.split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged["sub"] = "mallory"
    forged_payload = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    response = anonymous.get("/api/runs", auth=(f"{header}.{forged_payload}.{signature}", ""))
    assert response.status_code == 401


def test_token_expires(anonymous: TestClient, clock: FakeClock) -> None:
    token = anonymous.get("/api/token", auth=(USER, PASSWORD)).json()["token"]
    clock.advance(dt.timedelta(days=7, seconds=1))
    assert anonymous.get("/api/runs", auth=(token, "")).status_code == 401


def test_token_dies_with_a_password_change(anonymous: TestClient, services: Services) -> None:
    token = anonymous.get("/api/token", auth=(USER, PASSWORD)).json()["token"]
    services.accounts.change_password(USER, "through the looking glass")
    assert anonymous.get("/api/runs", auth=(token, "")).status_code == 401


def test_create_list_inspect_and_delete_runs(client: TestClient, clock: FakeClock) -> None:
    created = client.post("/api/run", json={"numTasks": 3})
    assert created.status_code == 201
    run = created.json()
    assert set(run) == {"id", "uuid", "numTasks", "name", "created", "owner"}
    assert (run["numTasks"], run["name"], run["owner"]) == (3, None, USER)
    assert run["created"] == clock.now().isoformat()
    second = client.post("/api/run", json={"numTasks": 5}).json()

    fresh = {"percentDone": 0.0, "numDone": 0, "numComputing": 0, "numFailed": 0}
    assert client.get("/api/runs").json() == {
        "data": [{**run, **fresh, "numWaiting": 3}, {**second, **fresh, "numWaiting": 5}]
    }
    assert client.get(f"/api/runs/{run['uuid']}").json() == {
        **run,
        "percentDone": 0.0,
        "numWaiting": 3,
        "numDone": 0,
        "numComputing": 0,
        "numFailed": 0,
        "leaseSeconds": None,
        "maxAttempts": None,
    }
    assert client.get(f"/api/runs/{run['uuid']}", params={"info": "numWaiting"}).json() == {
        "numWaiting": 3
    }

    assert client.delete(f"/api/runs/{run['uuid']}").status_code == 204
    assert client.get(f"/api/runs/{run['uuid']}").status_code == 404
    assert client.delete(f"/api/runs/{run['uuid']}").status_code == 404


def test_a_run_is_found_by_its_name_wherever_its_uuid_is_asked_for(
    client: TestClient, worker_uuid: str
) -> None:
    run = client.post("/api/run", json={"numTasks": 2, "name": "sweep-2026.v1"}).json()
    assert run["name"] == "sweep-2026.v1"

    assert client.get("/api/runs/sweep-2026.v1").json()["uuid"] == run["uuid"]
    claimed = claim(client, "sweep-2026.v1", worker_uuid).json()
    assert (
        client.put(
            f"/api/runs/sweep-2026.v1/tasks/{claimed['task']}",
            json={"status": "done", "percentCompleted": 100},
        ).status_code
        == 204
    )
    assert client.get(f"/api/runs/{run['uuid']}", params={"info": "numDone"}).json() == {
        "numDone": 1
    }

    taken = client.post("/api/run", json={"numTasks": 1, "name": "sweep-2026.v1"})
    assert taken.status_code == 409
    assert "already a run called 'sweep-2026.v1'" in taken.json()["detail"]
    assert client.delete("/api/runs/sweep-2026.v1").status_code == 204
    assert client.get("/api/runs/sweep-2026.v1").status_code == 404
    assert client.post("/api/run", json={"numTasks": 1, "name": "sweep-2026.v1"}).status_code == 201


@pytest.mark.parametrize(
    "name", ["", "-x", "a b", "a/b", "x" * 65, "é", 7, "0123456789abcdef0123456789ABCDEF"]
)
def test_a_run_name_that_would_not_do_is_400_and_makes_no_run(
    client: TestClient, name: object
) -> None:
    refused = client.post("/api/run", json={"numTasks": 1, "name": name})
    assert refused.status_code == 400
    assert "run name" in refused.json()["detail"]
    assert client.get("/api/runs").json()["data"] == []


def test_a_billion_tasks_run_is_created_and_counted_at_once(client: TestClient) -> None:
    run = client.post("/api/run", json={"numTasks": 10**9}).json()
    assert client.get(f"/api/runs/{run['uuid']}", params={"info": "numWaiting"}).json() == {
        "numWaiting": 10**9
    }
    assert client.get(f"/api/runs/{run['uuid']}/tasks/999999999").json()["status"] == "waiting"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"numTasks": 0},
        {"numTasks": -1},
        {"numTasks": 1.5},
        {"numTasks": "3"},
        {"numTasks": True},
        {"numTasks": None},
        {"numTasks": 2**53 + 1},
        {"numTasks": 3, "extra": 1},
        [3],
    ],
)
def test_nonsense_runs_are_400(client: TestClient, body: Any) -> None:
    response = client.post("/api/run", json=body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert client.get("/api/runs").json() == {"data": []}


def test_claims_hand_out_tasks_in_order_then_204(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    tasks = [claim(client, run_uuid, worker_uuid) for _ in range(10)]
    assert [r.status_code for r in tasks] == [201] * 10
    assert tasks[0].json() == {
        "id": 0,
        "task": 0,
        "percentCompleted": 0.0,
        "status": "computing",
        "attempts": 1,
        "leaseExpires": None,
    }
    assert [r.json()["task"] for r in tasks] == list(range(10))
    assert claim(client, run_uuid, worker_uuid).status_code == 204
    assert client.get(f"/api/runs/{run_uuid}", params={"info": "numComputing"}).json() == {
        "numComputing": 10
    }


def test_a_requeued_task_goes_out_before_untouched_ones(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    for _ in range(3):
        claim(client, run_uuid, worker_uuid)
    client.put(f"/api/runs/{run_uuid}/tasks/1", json={"percentCompleted": 20, "status": "waiting"})
    again = claim(client, run_uuid, worker_uuid).json()
    assert (again["task"], again["percentCompleted"], again["status"]) == (1, 20.0, "computing")
    assert again["attempts"] == 1  # handed back, the first attempt was given back
    assert claim(client, run_uuid, worker_uuid).json()["task"] == 3


def test_claim_after_tasks_written_out_of_order_skips_them(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    client.put(f"/api/runs/{run_uuid}/tasks/0", json={"status": "done", "percentCompleted": 100})
    client.put(f"/api/runs/{run_uuid}/tasks/2", json={"status": "computing"})
    handed_out = [claim(client, run_uuid, worker_uuid).json()["task"] for _ in range(8)]
    assert handed_out == [1, 3, 4, 5, 6, 7, 8, 9]
    assert claim(client, run_uuid, worker_uuid).status_code == 204


def test_claim_errors(client: TestClient, run_uuid: str, worker_uuid: str) -> None:
    assert client.post(f"/api/runs/{run_uuid}/task", json={}).status_code == 400
    assert client.post(f"/api/runs/{run_uuid}/task", json={"worker_uuid": 7}).status_code == 400
    unknown_worker = claim(client, run_uuid, "nobody")
    assert unknown_worker.status_code == 404
    assert "register" in unknown_worker.json()["detail"]
    assert claim(client, "no-such-run", worker_uuid).status_code == 404


def test_any_task_can_be_read_and_written(client: TestClient, run_uuid: str) -> None:
    task = f"/api/runs/{run_uuid}/tasks/7"
    assert client.get(task).json() == {
        "id": 7,
        "task": 7,
        "percentCompleted": 0.0,
        "status": "waiting",
        "attempts": 0,
        "leaseExpires": None,
    }
    assert client.put(task, json={"percentCompleted": 55.5}).status_code == 204
    assert client.get(task, params={"info": "percentCompleted"}).json() == {
        "percentCompleted": 55.5
    }
    assert client.put(task, json={"status": "done"}).status_code == 204
    assert client.get(task, params={"info": "status"}).json() == {"status": "done"}
    assert client.get(task, params={"info": "worker"}).status_code == 404
    run = client.get(f"/api/runs/{run_uuid}").json()
    assert (run["numDone"], run["numWaiting"], run["percentDone"]) == (1, 9, pytest.approx(5.55))


@pytest.mark.parametrize("index", ["10", "11", "99999999999999999999999", "-1", "abc", "1.5"])
def test_tasks_outside_the_run_are_404(client: TestClient, run_uuid: str, index: str) -> None:
    assert client.get(f"/api/runs/{run_uuid}/tasks/{index}").status_code == 404
    assert (
        client.put(f"/api/runs/{run_uuid}/tasks/{index}", json={"status": "done"}).status_code
        == 404
    )


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"percentCompleted": 101},
        {"percentCompleted": -0.1},
        {"percentCompleted": "50"},
        {"percentCompleted": True},
        {"percentCompleted": None},
        {"status": "finished"},
        {"status": None},
        {"status": "done", "colour": "red"},
        {"percentCompleted": 50, "status": "nope"},
    ],
)
def test_nonsense_updates_are_400_and_change_nothing(
    client: TestClient, run_uuid: str, body: Any
) -> None:
    task = f"/api/runs/{run_uuid}/tasks/4"
    response = client.put(task, json=body)
    assert response.status_code == 400
    assert response.json()["detail"]
    assert client.get(task).json() == {
        "id": 4,
        "task": 4,
        "percentCompleted": 0.0,
        "status": "waiting",
        "attempts": 0,
        "leaseExpires": None,
    }


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"NaN", b'{"percentCompleted": Infinity}', b"[1]", b"null"]
)
def test_bodies_that_are_not_json_objects_are_400(
    client: TestClient, run_uuid: str, raw: bytes
) -> None:
    response = client.put(f"/api/runs/{run_uuid}/tasks/0", content=raw)
    assert response.status_code == 400
    assert "JSON object" in response.json()["detail"]


@pytest.mark.parametrize(
    ("raw", "detail"),
    [
        # Past 64 bits: the domain's answer, not the parser's.
        (b'{"numTasks": 100000000000000000000000000}', "numTasks"),
        # JSON in UTF-16, with a byte order mark, as `json.loads` reads it.
        ('{"numTasks": 0}'.encode("utf-16"), "numTasks"),
        # An escaped lone surrogate is a JSON string; the domain refuses it in a name.
        (b'{"numTasks": 3, "name": "a\\ud800"}', "name"),
    ],
)
def test_bodies_the_fast_parser_refuses_are_read_as_the_standard_library_reads_them(
    client: TestClient, raw: bytes, detail: str
) -> None:
    response = client.post("/api/run", content=raw)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert "JSON object" not in response.json()["detail"]


def test_huge_bodies_are_413(client: TestClient) -> None:
    response = client.post("/api/run", content=b" " * (2 * 1024 * 1024))
    assert response.status_code == 413
    assert response.json()["detail"]


def test_restart_partial_and_all(client: TestClient, run_uuid: str, worker_uuid: str) -> None:
    for _ in range(3):
        claim(client, run_uuid, worker_uuid)
    client.put(f"/api/runs/{run_uuid}/tasks/0", json={"percentCompleted": 100, "status": "done"})
    client.put(f"/api/runs/{run_uuid}/tasks/1", json={"percentCompleted": 40})

    assert client.post(f"/api/runs/{run_uuid}/restart").status_code == 204
    run = client.get(f"/api/runs/{run_uuid}").json()
    assert (run["numDone"], run["numComputing"], run["numWaiting"]) == (1, 0, 9)
    assert client.get(f"/api/runs/{run_uuid}/tasks/1").json()["percentCompleted"] == 40.0

    assert client.post(f"/api/runs/{run_uuid}/restart", params={"all": "True"}).status_code == 204
    run = client.get(f"/api/runs/{run_uuid}").json()
    assert (run["numDone"], run["numWaiting"], run["percentDone"]) == (0, 10, 0.0)
    assert client.post(f"/api/runs/{run_uuid}/restart", params={"all": "yes"}).status_code == 404
    assert client.post("/api/runs/nope/restart").status_code == 404


def test_workers_register_once(client: TestClient) -> None:
    body = {"uuid": "w-9", "hostname": "node9", "pid": 9}
    first = client.post("/api/worker", json=body)
    assert first.status_code == 201
    assert set(first.json()) == {"uuid", "id"}
    assert client.post("/api/worker", json=body).json() == first.json()
    assert client.post("/api/worker", json={**body, "pid": 10}).status_code == 409


@pytest.mark.parametrize(
    "body",
    [
        {"hostname": "h", "pid": 1},
        {"uuid": "w", "pid": 1},
        {"uuid": "w", "hostname": "h"},
        {"uuid": "", "hostname": "h", "pid": 1},
        {"uuid": "w", "hostname": "h", "pid": "1"},
        {"uuid": "w", "hostname": "h", "pid": -1},
    ],
)
def test_incomplete_workers_are_400(client: TestClient, body: dict[str, Any]) -> None:
    assert client.post("/api/worker", json=body).status_code == 400


def test_unknown_paths_are_json_404(client: TestClient) -> None:
    response = client.get("/api/nothing-here")
    assert response.status_code == 404
    assert response.json()["detail"]


def test_huge_chunked_bodies_are_413(client: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(3):
            yield b" " * (512 * 1024)

    response = client.post("/api/run", content=chunks())
    assert response.status_code == 413
    assert response.json()["detail"]


# Leases, heartbeats, batch claims and workers


def leased_run(client: TestClient, num_tasks: int = 4, **policy: int) -> str:
    response = client.post("/api/run", json={"numTasks": num_tasks, **policy})
    assert response.status_code == 201
    return str(response.json()["uuid"])


def test_a_run_states_its_lease_and_attempts(client: TestClient) -> None:
    run_uuid = leased_run(client, leaseSeconds=30, maxAttempts=2)
    info = client.get(f"/api/runs/{run_uuid}").json()
    assert (info["leaseSeconds"], info["maxAttempts"], info["numFailed"]) == (30, 2, 0)


@pytest.mark.parametrize(
    "policy",
    [
        {"leaseSeconds": 0},
        {"leaseSeconds": -5},
        {"leaseSeconds": 1.5},
        {"leaseSeconds": "60"},
        {"leaseSeconds": True},
        {"maxAttempts": 0},
        {"maxAttempts": "3"},
    ],
)
def test_nonsense_leases_are_400(client: TestClient, policy: dict[str, Any]) -> None:
    response = client.post("/api/run", json={"numTasks": 4, **policy})
    assert response.status_code == 400
    assert next(iter(policy)) in response.json()["detail"]


def test_an_expired_lease_hands_the_task_to_the_next_worker(
    client: TestClient, clock: FakeClock, services: Services, worker_uuid: str
) -> None:
    run_uuid = leased_run(client, 2, leaseSeconds=60)
    first = claim(client, run_uuid, worker_uuid).json()
    assert first["leaseExpires"] == (clock.now() + dt.timedelta(seconds=60)).isoformat()

    clock.advance(dt.timedelta(seconds=61))
    services.taskfarm.expire_leases()
    info = client.get(f"/api/runs/{run_uuid}").json()
    assert (info["numComputing"], info["numWaiting"]) == (0, 2)

    client.post("/api/worker", json={"uuid": "w-2", "hostname": "node2", "pid": 7})
    # After the task nobody ran yet: a task whose worker went silent may be what killed it.
    assert claim(client, run_uuid, "w-2").json()["task"] == 1
    again = claim(client, run_uuid, "w-2").json()
    assert (again["task"], again["attempts"]) == (first["task"], 2)


def test_updates_and_heartbeats_renew_the_lease(
    client: TestClient, clock: FakeClock, services: Services, worker_uuid: str
) -> None:
    run_uuid = leased_run(client, leaseSeconds=60)
    task = claim(client, run_uuid, worker_uuid).json()["task"]
    url = f"/api/runs/{run_uuid}/tasks/{task}"

    clock.advance(dt.timedelta(seconds=50))
    assert client.put(url, json={"percentCompleted": 10}).status_code == 204
    clock.advance(dt.timedelta(seconds=50))
    assert client.post(url + "/heartbeat", json={"worker_uuid": worker_uuid}).status_code == 204
    clock.advance(dt.timedelta(seconds=50))
    assert client.post(url + "/heartbeat").status_code == 204
    clock.advance(dt.timedelta(seconds=50))
    services.taskfarm.expire_leases()

    assert client.get(url).json()["status"] == "computing"
    assert client.get(url, params={"info": "percentCompleted"}).json()["percentCompleted"] == 10


def test_one_heartbeat_renews_the_leases_of_all_the_workers_tasks_and_names_those_lost(
    client: TestClient, clock: FakeClock, services: Services, worker_uuid: str
) -> None:
    run_uuid = leased_run(client, 6, leaseSeconds=60)
    mine = [claim(client, run_uuid, worker_uuid).json()["task"] for _ in range(3)]
    client.post("/api/worker", json={"uuid": "w-2", "hostname": "node2", "pid": 7})
    theirs = claim(client, run_uuid, "w-2").json()["task"]
    client.put(f"/api/runs/{run_uuid}/tasks/{mine[2]}", json={"status": "done"})
    heartbeat = f"/api/runs/{run_uuid}/tasks/heartbeat"

    clock.advance(dt.timedelta(seconds=50))
    renewed = client.post(heartbeat, json={"worker_uuid": worker_uuid, "tasks": [*mine, theirs]})
    clock.advance(dt.timedelta(seconds=50))
    services.taskfarm.expire_leases()

    assert renewed.status_code == 200
    # The finished task has no lease to renew; the other worker's is not this one's.
    assert renewed.json() == {"lost": [mine[2], theirs]}
    states = [client.get(f"/api/runs/{run_uuid}/tasks/{i}").json()["status"] for i in range(4)]
    assert states == ["computing", "computing", "done", "waiting"]


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({"tasks": [0]}, "worker_uuid"),
        ({"worker_uuid": None, "tasks": [0]}, "worker_uuid"),
        ({"worker_uuid": "w"}, "tasks"),
        ({"worker_uuid": "w", "tasks": 0}, "tasks"),
        ({"worker_uuid": "w", "tasks": ["0"]}, "task index"),
        ({"worker_uuid": "w", "tasks": list(range(1001))}, "at most 1000"),
        ({"worker_uuid": "w", "tasks": [0], "count": 1}, "count"),
    ],
)
def test_a_bad_heartbeat_of_many_tasks_is_400_and_renews_nothing(
    client: TestClient, clock: FakeClock, worker_uuid: str, body: dict[str, Any], detail: str
) -> None:
    run_uuid = leased_run(client, 2, leaseSeconds=60)
    held = claim(client, run_uuid, worker_uuid).json()
    clock.advance(dt.timedelta(seconds=10))  # a renewal would move the lease's end
    response = client.post(f"/api/runs/{run_uuid}/tasks/heartbeat", json=body)
    assert response.status_code == 400
    assert detail in response.json()["detail"]
    task = client.get(f"/api/runs/{run_uuid}/tasks/{held['task']}").json()
    assert task["leaseExpires"] == held["leaseExpires"]


def test_a_heartbeat_of_many_tasks_past_the_run_is_404_and_renews_nothing(
    client: TestClient, clock: FakeClock, worker_uuid: str
) -> None:
    run_uuid = leased_run(client, 2, leaseSeconds=60)
    held = claim(client, run_uuid, worker_uuid).json()
    clock.advance(dt.timedelta(seconds=10))
    body = {"worker_uuid": worker_uuid, "tasks": [held["task"], 2]}
    assert client.post(f"/api/runs/{run_uuid}/tasks/heartbeat", json=body).status_code == 404
    assert client.post("/api/runs/nope/tasks/heartbeat", json=body).status_code == 404
    task = client.get(f"/api/runs/{run_uuid}/tasks/{held['task']}").json()
    assert task["leaseExpires"] == held["leaseExpires"]


def test_a_zombie_cannot_overwrite_the_new_owners_progress(
    client: TestClient, clock: FakeClock, services: Services, worker_uuid: str
) -> None:
    run_uuid = leased_run(client, 1, leaseSeconds=60)
    task = claim(client, run_uuid, worker_uuid).json()["task"]
    clock.advance(dt.timedelta(seconds=61))
    services.taskfarm.expire_leases()
    client.post("/api/worker", json={"uuid": "w-2", "hostname": "node2", "pid": 7})
    assert claim(client, run_uuid, "w-2").json()["task"] == task
    url = f"/api/runs/{run_uuid}/tasks/{task}"

    refused = client.put(url, json={"percentCompleted": 100, "worker_uuid": worker_uuid})
    assert refused.status_code == 409
    assert "w-2" in refused.json()["detail"]
    assert client.post(url + "/heartbeat", json={"worker_uuid": worker_uuid}).status_code == 409
    assert client.get(url).json()["percentCompleted"] == 0.0
    assert client.put(url, json={"percentCompleted": 50, "worker_uuid": "w-2"}).status_code == 204


def test_a_task_that_keeps_losing_its_lease_fails_until_restarted(
    client: TestClient, clock: FakeClock, services: Services, worker_uuid: str
) -> None:
    run_uuid = leased_run(client, 1, leaseSeconds=10, maxAttempts=2)
    for _ in range(2):
        assert claim(client, run_uuid, worker_uuid).json()["task"] == 0
        clock.advance(dt.timedelta(seconds=11))
        services.taskfarm.expire_leases()
    assert client.get(f"/api/runs/{run_uuid}/tasks/0").json()["status"] == "failed"
    assert client.get(f"/api/runs/{run_uuid}", params={"info": "numFailed"}).json() == {
        "numFailed": 1
    }
    assert claim(client, run_uuid, worker_uuid).status_code == 204

    client.post(f"/api/runs/{run_uuid}/restart")
    assert client.get(f"/api/runs/{run_uuid}/tasks/0").json()["status"] == "waiting"
    assert client.get(f"/api/runs/{run_uuid}", params={"info": "numFailed"}).json() == {
        "numFailed": 0
    }


def test_several_tasks_are_claimed_in_one_request(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    url = f"/api/runs/{run_uuid}/tasks/claim"
    first = client.post(url, json={"worker_uuid": worker_uuid, "count": 4})
    assert first.status_code == 201
    assert [task["task"] for task in first.json()["tasks"]] == [0, 1, 2, 3]
    rest = client.post(url, json={"worker_uuid": worker_uuid, "count": 100}).json()["tasks"]
    assert [task["task"] for task in rest] == [4, 5, 6, 7, 8, 9]
    assert client.post(url, json={"worker_uuid": worker_uuid, "count": 3}).status_code == 204
    assert client.post(url, json={"worker_uuid": worker_uuid, "count": 0}).status_code == 400
    assert client.post(url, json={"worker_uuid": worker_uuid, "count": 10**6}).status_code == 400


def test_workers_are_listed_with_last_contact_and_tasks_held(
    client: TestClient, clock: FakeClock, run_uuid: str, worker_uuid: str
) -> None:
    registered = clock.now()
    clock.advance(dt.timedelta(minutes=5))
    claim(client, run_uuid, worker_uuid)
    claim(client, run_uuid, worker_uuid)
    listed = client.get("/api/workers").json()["data"]
    assert listed == [
        {
            "uuid": worker_uuid,
            "id": listed[0]["id"],
            "hostname": "node1",
            "pid": 42,
            "started": registered.isoformat(),
            "lastSeen": clock.now().isoformat(),
            "tasksHeld": 2,
        }
    ]


@pytest.mark.parametrize(
    "key",
    [b"", b"dhdtPy-is-not-so-secret", b"secret"],
    ids=["empty", "the-old-servers-key", "a-guess"],
)
def test_tokens_signed_with_a_known_key_are_refused(anonymous: TestClient, key: bytes) -> None:
    expires = int((dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).timestamp())
    forged = hs256_token({"sub": USER, "stamp": "x", "exp": expires}, key)
    assert anonymous.get("/api/runs", auth=(forged, "")).status_code == 401


def hs256_token(claims: dict[str, Any], key: bytes) -> str:
    """A JWT signed by hand: PyJWT rightly refuses to sign with keys this weak."""

    def encode(part: bytes) -> str:
        return base64.urlsafe_b64encode(part).rstrip(b"=").decode()

    header = encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = encode(json.dumps(claims).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{encode(signature)}"


def test_failed_logins_are_logged_without_the_password(
    anonymous: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        anonymous.get("/api/runs", auth=(USER, "guessed-wrong"))
    assert USER in caplog.text
    assert "testclient" in caplog.text
    assert "guessed-wrong" not in caplog.text


# Failures: how attempts ended, listed by status, retried


def fail(client: TestClient, run_uuid: str, index: int, **fields: object) -> Any:
    body = {"status": "failed", "worker_uuid": "w-1", **fields}
    return client.put(f"/api/runs/{run_uuid}/tasks/{index}", json=body)


def listed(client: TestClient, run_uuid: str, status: str, **params: int) -> Any:
    return client.get(f"/api/runs/{run_uuid}/tasks", params={"status": status, **params})


def test_a_failure_is_listed_with_its_exit_status_error_worker_and_host(
    client: TestClient, run_uuid: str, worker_uuid: str, clock: FakeClock
) -> None:
    claim(client, run_uuid, worker_uuid)
    started = clock.now()
    clock.advance(dt.timedelta(seconds=5))

    assert (
        fail(client, run_uuid, 0, exitCode=7, error="Traceback\nValueError: 'x'\n").status_code
        == 204
    )

    page = listed(client, run_uuid, "failed").json()
    assert page == {
        "tasks": [
            {
                "task": 0,
                "status": "failed",
                "percentCompleted": 0.0,
                "attempts": 1,
                "worker": None,
                "hostname": None,
                "started": started.isoformat(),
                "leaseExpires": None,
                "lastAttempt": {
                    "outcome": "failed",
                    "worker": "w-1",
                    "hostname": "node1",
                    "started": started.isoformat(),
                    "ended": clock.now().isoformat(),
                    "exitCode": 7,
                    "error": "Traceback\nValueError: 'x'\n",
                },
            }
        ],
        "next": None,
    }


@pytest.mark.parametrize(
    ("fields", "detail"),
    [
        ({"error": "x" * 4097}, "error must be at most 4096 bytes of UTF-8, not 4097"),
        ({"exitCode": 1.5}, "exitCode must be a whole number"),
        ({"exitCode": "7"}, "exitCode must be a whole number"),
        ({"error": ["x"]}, "error must be a string"),
        ({"exitCode": None}, "exitCode cannot be null"),
        ({"status": "computing", "exitCode": 1}, "send them with status done, failed or waiting"),
        ({"status": None, "percentCompleted": 5, "exitCode": 1}, "status cannot be null"),
    ],
)
def test_what_a_command_did_is_checked_and_a_bad_report_changes_nothing(
    client: TestClient, run_uuid: str, worker_uuid: str, fields: dict[str, object], detail: str
) -> None:
    claim(client, run_uuid, worker_uuid)

    response = fail(client, run_uuid, 0, **fields)

    assert response.status_code == 400
    assert detail in response.json()["detail"]
    assert client.get(f"/api/runs/{run_uuid}/tasks/0").json()["status"] == "computing"
    assert listed(client, run_uuid, "failed").json() == {"tasks": [], "next": None}


def test_pages_of_tasks_follow_their_cursor_and_waiting_ones_include_untouched(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    for _ in range(6):
        claim(client, run_uuid, worker_uuid)
    for index in (1, 2, 4):
        fail(client, run_uuid, index)
    done = {"status": "done", "percentCompleted": 100}
    client.put(f"/api/runs/{run_uuid}/tasks/5", json=done)

    pages, after = [], -1
    while after is not None:
        page = listed(client, run_uuid, "failed", limit=2, after=after).json()
        pages.append([task["task"] for task in page["tasks"]])
        after = page["next"]
    assert pages == [[1, 2], [4]]
    waiting = listed(client, run_uuid, "waiting", limit=1000).json()
    assert [task["task"] for task in waiting["tasks"]] == [6, 7, 8, 9]
    assert waiting["tasks"][0]["lastAttempt"] is None
    computing = listed(client, run_uuid, "computing").json()
    assert [task["task"] for task in computing["tasks"]] == [0, 3]
    assert [t["task"] for t in listed(client, run_uuid, "done").json()["tasks"]] == [5]


@pytest.mark.parametrize(
    ("params", "detail"),
    [
        ({}, "say which tasks to list"),
        ({"status": "broken"}, "status must be one of waiting, computing, done, failed"),
        ({"status": "failed", "limit": 0}, "limit must be between 1 and 1000"),
        ({"status": "failed", "limit": 1001}, "limit must be between 1 and 1000"),
        ({"status": "failed", "after": "x"}, "after must be a whole number"),
        ({"status": "failed", "after": -2}, "after must be between -1"),
    ],
)
def test_a_bad_listing_is_refused_with_what_to_ask_instead(
    client: TestClient, run_uuid: str, params: dict[str, str | int], detail: str
) -> None:
    response = client.get(f"/api/runs/{run_uuid}/tasks", params=params)

    assert response.status_code == 400
    assert detail in response.json()["detail"]


def test_retry_puts_failed_tasks_back_with_fresh_attempts_and_keeps_their_record(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    for _ in range(3):
        claim(client, run_uuid, worker_uuid)
    fail(client, run_uuid, 0, exitCode=1)
    fail(client, run_uuid, 2, exitCode=2)
    client.put(f"/api/runs/{run_uuid}/tasks/1", json={"status": "done", "percentCompleted": 100})

    retried = client.post(f"/api/runs/{run_uuid}/retry", json={"status": "failed"})

    assert retried.json() == {"retried": 2}
    info = client.get(f"/api/runs/{run_uuid}").json()
    assert (info["numFailed"], info["numDone"], info["numWaiting"]) == (0, 1, 9)
    waiting = listed(client, run_uuid, "waiting", limit=3).json()["tasks"]
    assert [(t["task"], t["attempts"], t["lastAttempt"]["exitCode"]) for t in waiting[:2]] == [
        (0, 0, 1),
        (2, 0, 2),
    ]
    again = claim(client, run_uuid, worker_uuid).json()
    assert (again["task"], again["attempts"]) == (0, 1)


def test_retry_of_chosen_tasks_takes_finished_ones_and_leaves_others(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    for _ in range(3):
        claim(client, run_uuid, worker_uuid)
    client.put(f"/api/runs/{run_uuid}/tasks/1", json={"status": "done", "percentCompleted": 100})
    fail(client, run_uuid, 2)

    retried = client.post(f"/api/runs/{run_uuid}/retry", json={"tasks": [0, 1, 2, 7, 9]})

    assert retried.json() == {"retried": 2}
    info = client.get(f"/api/runs/{run_uuid}").json()
    assert (info["numComputing"], info["numDone"], info["percentDone"]) == (1, 0, 0.0)


@pytest.mark.parametrize(
    ("body", "status", "detail"),
    [
        ({}, 400, "say which tasks to retry"),
        ({"status": "failed", "tasks": [1]}, 400, "say which tasks to retry"),
        ({"status": "done"}, 400, "only failed tasks are retried by status"),
        ({"tasks": []}, 400, "tasks must be a list of 1 to 10000 task indices"),
        ({"tasks": "1,2"}, 400, "tasks must be a list"),
        ({"tasks": [-1]}, 400, "each task index must be between 0"),
        ({"tasks": list(range(10_001))}, 400, "send more in several requests"),
        ({"every": True}, 400, "unknown field every"),
    ],
)
def test_a_bad_retry_is_refused_and_changes_nothing(
    client: TestClient,
    run_uuid: str,
    worker_uuid: str,
    body: dict[str, object],
    status: int,
    detail: str,
) -> None:
    claim(client, run_uuid, worker_uuid)
    fail(client, run_uuid, 0)

    response = client.post(f"/api/runs/{run_uuid}/retry", json=body)

    assert response.status_code == status
    assert detail in response.json()["detail"]
    assert client.get(f"/api/runs/{run_uuid}").json()["numFailed"] == 1


def test_retry_and_listing_of_an_unknown_run_are_404(client: TestClient) -> None:
    assert client.post("/api/runs/nope/retry", json={"status": "failed"}).status_code == 404
    assert listed(client, "nope", "failed").status_code == 404


def test_a_query_parameter_the_api_does_not_know_is_a_400_and_changes_nothing(
    client: TestClient, run_uuid: str, worker_uuid: str
) -> None:
    claim(client, run_uuid, worker_uuid)
    refused = client.post(f"/api/runs/{run_uuid}/restart", params={"al": "True"})
    assert refused.status_code == 400
    assert refused.json()["detail"] == "unknown query parameter 'al'"
    assert client.get(f"/api/runs/{run_uuid}", params={"info": "numComputing"}).json() == {
        "numComputing": 1
    }
    claimed = client.post(
        f"/api/runs/{run_uuid}/tasks/claim", params={"count": "2"}, json={"worker_uuid": "w-1"}
    )
    assert claimed.status_code == 400
    # The published client's queries are the API's.
    assert client.get(f"/api/runs/{run_uuid}/tasks/0", params={"info": "status"}).status_code == 200


# The fast lane: the claim routes answered as the app behind it answers them.

WORKER = "w-lane"
Call = Callable[[TestClient, str], Any]


def _claim(body: Any, **options: Any) -> Call:
    return lambda client, run: client.post(f"/api/runs/{run}/task", json=body, **options)


def _exchange(body: Any) -> Call:
    return lambda client, run: client.post(f"/api/runs/{run}/tasks/claim", json=body)


CLAIM_CALLS: dict[str, Call] = {
    "a claim": _claim({"worker_uuid": WORKER}),
    "a claim of several, reporting none done": _exchange({"worker_uuid": WORKER, "count": 3}),
    "an exchange of tasks not held": _exchange({"worker_uuid": WORKER, "done": [7], "count": 1}),
    "a bad count": _exchange({"worker_uuid": WORKER, "count": -1}),
    "a body that is not JSON": lambda client, run: client.post(
        f"/api/runs/{run}/task", content=b"{nope", headers={"content-type": "application/json"}
    ),
    "a body without the worker": _claim({}),
    "an unknown field": _claim({"worker_uuid": WORKER, "extra": 1}),
    "an unregistered worker": _claim({"worker_uuid": "nobody"}),
    "an unknown run": lambda client, run: _claim({"worker_uuid": WORKER})(client, "no-such-run"),
    "no credentials": _claim({"worker_uuid": WORKER}, auth=None),
    "a wrong password": _claim({"worker_uuid": WORKER}, auth=(USER, "wrong")),
    "a wrong method": lambda client, run: client.get(f"/api/runs/{run}/task"),
    "a query parameter": _claim({"worker_uuid": WORKER}, params={"all": "1"}),
    "a body far too large": lambda client, run: client.post(
        f"/api/runs/{run}/task", content=b" " * (2 * 1024 * 1024)
    ),
    "the last task": lambda client, run: [
        _claim({"worker_uuid": WORKER})(client, run) for _ in range(6)
    ][-1],
}


def _answer(response: Any, run: str) -> tuple[int, dict[str, str], str]:
    headers = {
        name: value
        for name, value in response.headers.items()
        if name in ("content-type", "www-authenticate", "allow", "retry-after")
    }
    return response.status_code, headers, response.text.replace(run, "RUN")


def _new_run(client: TestClient) -> str:
    client.post("/api/worker", json={"uuid": WORKER, "hostname": "node1", "pid": 42})
    return str(client.post("/api/run", json={"numTasks": 5}).json()["uuid"])


@pytest.mark.parametrize("call", CLAIM_CALLS.values(), ids=CLAIM_CALLS.keys())
def test_the_fast_lane_answers_as_the_app_behind_it(
    client: TestClient, call: Call, monkeypatch: pytest.MonkeyPatch
) -> None:
    in_lane = _new_run(client)
    fast = _answer(call(client, in_lane), in_lane)

    monkeypatch.setattr(FastLane, "_route", lambda self, scope: None)
    passed_on = _new_run(client)
    slow = _answer(call(client, passed_on), passed_on)

    assert fast == slow
    assert fast[0] != 500
