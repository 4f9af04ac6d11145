"""A claim that reports tasks done (`POST .../tasks/claim` with `done`): one request per batch
of short tasks. Each reported task is fenced as an update naming its worker is; with many
workers at once, some dying between the two halves, every task is still done exactly once."""

from __future__ import annotations

import collections
import io
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import attrs
import pytest
import requests
from starlette.testclient import TestClient

from taskfarm.bootstrap import Services, bootstrap
from taskfarm.client.api import Api, Claim
from taskfarm.client.commands import CommandTemplate
from taskfarm.client.login import Login
from taskfarm.client.runner import CommandRunner
from taskfarm.config import Settings
from taskfarm.entrypoints.http import create_app
from taskfarm.ports import Storage
from taskfarm.testing import TaskFarmServer
from tests.fakes import FakeClock, FakeHasher
from tests.integration.live_server import (
    BACKEND_IDS,
    BACKEND_PARAMS,
    LiveServer,
    database_url,
    running_server,
)

USER, PASSWORD = "ada", "analytical engine"


@pytest.fixture
def client(storage: Storage, clock: FakeClock) -> Iterator[TestClient]:
    services: Services = bootstrap(
        Settings(database_url="memory://"), storage=storage, clock=clock, hasher=FakeHasher()
    )
    services.accounts.add_user(USER, PASSWORD)
    with TestClient(create_app(services, close_on_shutdown=False)) as client:
        client.auth = (USER, PASSWORD)
        for worker in ("w-1", "w-2"):
            client.post("/api/worker", json={"uuid": worker, "hostname": "n", "pid": 1})
        yield client


def exchange(client: Any, run: str, worker: str, **body: object) -> Any:
    return client.post(f"/api/runs/{run}/tasks/claim", json={"worker_uuid": worker, **body})


def claimed(answer: Any) -> list[int]:
    return [task["task"] for task in answer.json()["tasks"]]


def test_reported_tasks_are_done_and_the_next_ones_claimed(client: TestClient) -> None:
    run = client.post("/api/run", json={"numTasks": 5}).json()["uuid"]
    assert claimed(exchange(client, run, "w-1", count=2)) == [0, 1]

    answer = exchange(client, run, "w-1", done=[0, 1], count=2)

    assert answer.status_code == 201
    assert (claimed(answer), answer.json()["lost"]) == ([2, 3], [])
    info = client.get(f"/api/runs/{run}").json()
    assert (info["numDone"], info["numComputing"], info["percentDone"]) == (2, 2, 40.0)
    assert client.get(f"/api/runs/{run}/tasks/0").json()["status"] == "done"


def test_with_nothing_left_or_asked_the_answer_still_says_what_was_lost(
    client: TestClient,
) -> None:
    run = client.post("/api/run", json={"numTasks": 1}).json()["uuid"]
    exchange(client, run, "w-1", count=1)

    answer = exchange(client, run, "w-1", done=[0], count=5)

    assert (answer.status_code, answer.json()) == (200, {"tasks": [], "lost": []})
    assert exchange(client, run, "w-1", done=[]).json() == {"tasks": [], "lost": []}
    # Without `done`, a claim answers as it always has.
    assert exchange(client, run, "w-1", count=1).status_code == 204


def test_a_task_another_worker_holds_is_lost_and_left_alone(client: TestClient) -> None:
    run = client.post("/api/run", json={"numTasks": 2}).json()["uuid"]
    exchange(client, run, "w-1", count=1)
    # Task 0 went back (as an expired lease sends it) and is another worker's now.
    client.put(f"/api/runs/{run}/tasks/0", json={"status": "waiting"})
    assert claimed(exchange(client, run, "w-2", count=1)) == [0]

    answer = exchange(client, run, "w-1", done=[0], count=1)

    assert (claimed(answer), answer.json()["lost"]) == ([1], [0])
    task = client.get(f"/api/runs/{run}/tasks/0").json()
    assert (task["status"], task["percentCompleted"]) == ("computing", 0.0)


@pytest.mark.parametrize(
    "body",
    [
        {"done": [0, 7]},
        {"done": [0, -1]},
        {"done": "0"},
        {"done": list(range(1001))},
        {"done": [0], "count": -1},
        {"done": [0], "count": 1001},
    ],
    ids=["past the end", "negative", "not a list", "too many", "negative count", "big count"],
)
def test_a_bad_report_changes_nothing(client: TestClient, body: dict[str, object]) -> None:
    run = client.post("/api/run", json={"numTasks": 2}).json()["uuid"]
    exchange(client, run, "w-1", count=1)

    answer = exchange(client, run, "w-1", **body)

    assert answer.status_code in (400, 404)
    assert answer.json()["detail"]
    info = client.get(f"/api/runs/{run}").json()
    assert (info["numDone"], info["numComputing"]) == (0, 1)


def test_a_worker_token_reports_the_tasks_of_its_run_only(client: TestClient) -> None:
    run = client.post("/api/run", json={"numTasks": 2}).json()["uuid"]
    other = client.post("/api/run", json={"numTasks": 2}).json()["uuid"]
    token = client.post("/api/tokens", json={"run": run}).json()["token"]
    worker = TestClient(client.app)
    worker.auth = (token, "")
    with worker:
        assert claimed(exchange(worker, run, "w-1", done=[], count=1)) == [0]
        assert exchange(worker, other, "w-1", done=[], count=1).status_code == 403


# Many workers at once, some dying between reporting and claiming

WORKERS = 6
TASKS = 240
BATCH = 3
#: The dead workers' leases (1 s) run out and are swept (every second) well within this.
MOP_UP_SECONDS = 30


def _work(server: LiveServer, run: str, number: int, dies_after: int | None) -> list[int]:
    """Claims `BATCH` at a time, reporting the last batch done with each claim, until nothing
    is left; a worker that `dies_after` that many exchanges stops holding its last claim
    (reported done, new ones claimed, never finished). Returns the tasks it finished."""
    with requests.Session() as session:
        session.auth = (server.user, server.password)
        worker = f"worker-{number}"
        body = {"uuid": worker, "hostname": "n", "pid": number}
        assert session.post(f"{server.api}worker", json=body, timeout=30).status_code == 201
        finished: list[int] = []
        holding: list[int] = []
        exchanges = 0
        while True:
            answer = session.post(
                f"{server.api}runs/{run}/tasks/claim",
                json={"worker_uuid": worker, "done": holding, "count": BATCH},
                timeout=60,
            )
            assert answer.status_code in (200, 201), answer.text
            lost = set(answer.json()["lost"])
            finished += [task for task in holding if task not in lost]
            holding = [task["task"] for task in answer.json()["tasks"]]
            exchanges += 1
            if not holding or (dies_after is not None and exchanges >= dies_after):
                return finished


@pytest.fixture(scope="module", params=BACKEND_PARAMS, ids=BACKEND_IDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("exchange")
    url = database_url(request, folder)
    with running_server(url, folder / "server.log", workers=2) as live:
        yield live


@pytest.mark.slow
def test_every_task_is_done_once_by_workers_reporting_as_they_claim(server: LiveServer) -> None:
    auth = (server.user, server.password)
    run = requests.post(
        f"{server.api}run", json={"numTasks": TASKS, "leaseSeconds": 1}, auth=auth, timeout=30
    ).json()["uuid"]
    start = threading.Barrier(WORKERS)

    def worker(number: int) -> list[int]:
        start.wait(timeout=60)
        # Two workers die holding a claim; the others finish what their leases give back.
        return _work(server, run, number, dies_after=5 if number < 2 else None)

    with ThreadPoolExecutor(WORKERS) as pool:
        finished = [task for tasks in pool.map(worker, range(WORKERS)) for task in tasks]
    # The tasks of the dead come back once their lease runs out: a last worker mops up.
    deadline = time.monotonic() + MOP_UP_SECONDS
    while len(finished) < TASKS and time.monotonic() < deadline:
        time.sleep(0.2)
        finished += _work(server, run, WORKERS, None)

    assert collections.Counter(finished) == collections.Counter(range(TASKS))
    info = requests.get(f"{server.api}runs/{run}", auth=auth, timeout=30).json()
    assert (info["numDone"], info["numComputing"], info["numWaiting"]) == (TASKS, 0, 0)


@attrs.define
class _LosesAnswers(Api):
    """An Api whose claims that report tasks done lose their answers, the first `losses`
    times: the server acts on them, and the worker hears only that the connection broke."""

    losses: list[int] = attrs.Factory(lambda: [2])

    def copy(self) -> _LosesAnswers:
        plain = super().copy()
        return _LosesAnswers(plain.base, plain.session, plain.auth, plain.retries, self.losses)

    def finish_and_claim(
        self, run_uuid: str, worker_uuid: str, done: Sequence[int], count: int
    ) -> tuple[list[Claim], list[int]]:
        answer = super().finish_and_claim(run_uuid, worker_uuid, done, count)
        if done and self.losses[0] > 0:
            self.losses[0] -= 1
            raise requests.ConnectionError("Connection aborted: the server went away")
        return answer


def test_a_worker_whose_claim_lost_its_answer_reports_again_and_runs_nothing_twice(
    taskfarm_server: TaskFarmServer,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    login = Login(taskfarm_server.user, taskfarm_server.password)
    api = _LosesAnswers.log_in(login, taskfarm_server.api)
    assert isinstance(api, _LosesAnswers)
    # The tasks the lost answers claimed come back once their lease ends.
    run = api.create_run(40, lease_seconds=2)["uuid"]
    ran = tmp_path / "ran"
    monkeypatch.setenv("RAN", str(ran))
    command = CommandTemplate(("sh", "-c", 'echo "$TASKFARM_TASK" >> "$RAN"'))

    def work() -> int:
        runner = CommandRunner.for_run(
            api, run, command, output=io.BytesIO(), errors=io.BytesIO(), jobs=2
        )
        return runner.run().exit_code

    assert work() == 0
    assert api.losses == [0]
    assert caplog.text.count("the answer to a claim was lost") == 2
    deadline = time.monotonic() + 30
    while api.run_info(run)["numDone"] < 40 and time.monotonic() < deadline:
        assert work() == 0  # as a batch system's next job would
        time.sleep(0.5)

    # Each command ran once: the successes of the lost answers were reported again, not run
    # again by another worker once their leases ended.
    assert sorted(int(line) for line in ran.read_text().split()) == list(range(40))
    info = api.run_info(run)
    assert (info["numDone"], info["numComputing"]) == (40, 0)
    api.close()
