"""The unchanged `taskfarm-worker` 0.4.0 client against a live `taskfarm serve`."""

from __future__ import annotations

import collections
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests
from taskfarm_worker import TaskFarm, TaskFarmWorker, tfRuns

from tests.integration.live_server import LiveServer, running_server, server_env

pytestmark = pytest.mark.slow

CLIENT_WORKER = Path(__file__).with_name("client_worker.py")
MANAGE_TF = str(Path(sys.executable).with_name("manageTF"))
ADMIN_TF = str(Path(sys.executable).with_name("adminTF"))


#: The database each live server runs on, by backend: a fixture's name, or a file for SQLite.
DATABASE_FIXTURES = {"postgres": "postgres_url", "redis": "redis_url"}


@pytest.fixture(
    scope="module",
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ],
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp(request.param)
    if request.param == "sqlite":
        database_url = f"sqlite:///{folder / 'taskfarm.db'}"
    else:
        database_url = request.getfixturevalue(DATABASE_FIXTURES[request.param])
    with running_server(database_url, folder / "server.log", workers=2) as live:
        yield live


def new_run(server: LiveServer, num_tasks: int) -> TaskFarm:
    return TaskFarm(server.user, server.password, numTasks=num_tasks, url_base=server.api)


def test_a_worker_completes_every_task_of_a_run(server: LiveServer) -> None:
    run = new_run(server, 12)
    worker = TaskFarmWorker(server.user, server.password, run.uuid, url_base=server.api)
    finished = []
    for task in worker.tasks:
        worker.update(30.0)
        worker.update(100.0)
        worker.done()
        finished.append(task)
    assert finished == list(range(12))
    info = run.info("")
    assert info == {
        "id": info["id"],
        "uuid": run.uuid,
        "name": None,
        "created": info["created"],
        "owner": server.user,
        "numTasks": 12,
        "percentDone": 100.0,
        "numWaiting": 0,
        "numDone": 12,
        "numComputing": 0,
        "numFailed": 0,
        "leaseSeconds": None,
        "maxAttempts": None,
    }


def test_run_queries_restart_and_delete_work_as_documented(server: LiveServer) -> None:
    run = new_run(server, 5)
    assert (run.numWaiting, run.numComputing, run.numDone, run.percentDone) == (5, 0, 0, 0.0)
    run.setTaskInfo(3, "percentCompleted", 40.0)
    run.setTaskInfo(4, "percentCompleted", 100.0)
    run.setTaskInfo(4, "status", "done")
    assert run.getTaskInfo(3, "") == {
        "id": 3,
        "task": 3,
        "percentCompleted": 40.0,
        "status": "waiting",
        "attempts": 0,
        "leaseExpires": None,
    }
    assert run.getTaskInfo(4, "status") == "done"
    assert run.percentDone == pytest.approx(28.0)

    same_run = TaskFarm(server.user, server.password, uuid=run.uuid, url_base=server.api)
    assert same_run.numTasks == 5
    assert run.uuid in [
        listed["uuid"] for listed in tfRuns(server.user, server.password, server.api)
    ]

    run.restart()
    assert (run.numDone, run.getTaskInfo(3, "percentCompleted")) == (1, 40.0)
    run.restart(everything=True)
    assert (run.numDone, run.numWaiting, run.percentDone) == (0, 5, 0.0)

    run.delete()
    with pytest.raises(RuntimeError, match="404"):
        run.info("")


def test_manage_tf_lists_inspects_resets_and_deletes_runs(server: LiveServer) -> None:
    run = new_run(server, 4)
    run.setTaskInfo(0, "percentCompleted", 100.0)
    run.setTaskInfo(0, "status", "done")

    def manage(*args: str) -> str:
        command = [MANAGE_TF, "-b", server.api, "-u", server.user, "-p", server.password, *args]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout

    assert run.uuid in manage("--list")
    assert f"{run.uuid} 4 (3,0,1) 25.0" in manage("--info", run.uuid)
    manage("--reset-all", run.uuid)
    assert f"{run.uuid} 4 (4,0,0) 0.0" in manage("--info", run.uuid)
    manage("--delete", run.uuid)
    assert run.uuid not in manage("--list")


def start_workers(
    server: LiveServer, run_uuid: str, count: int, *extra: str
) -> list[subprocess.Popen[str]]:
    command = [
        sys.executable,
        str(CLIENT_WORKER),
        server.api,
        server.user,
        server.password,
        run_uuid,
        *extra,
    ]
    return [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]


def finished_tasks(workers: list[subprocess.Popen[str]]) -> collections.Counter[int]:
    finished: collections.Counter[int] = collections.Counter()
    for worker in workers:
        output, _ = worker.communicate(timeout=120)
        assert worker.returncode == 0
        finished.update(int(line) for line in output.split())
    return finished


#: Many more client processes than the server has (two), on a run of several hundred tasks.
CLIENTS = 16
STRESS_TASKS = 320


@pytest.mark.parametrize("requeue_every", [0, 3], ids=["straight", "with-requeues"])
def test_worker_processes_finish_every_task_exactly_once(
    server: LiveServer, requeue_every: int
) -> None:
    run = new_run(server, STRESS_TASKS)
    workers = start_workers(server, run.uuid, CLIENTS, str(requeue_every))
    finished = finished_tasks(workers)
    assert finished == collections.Counter(range(STRESS_TASKS))
    info = run.info("")
    assert (info["numDone"], info["numComputing"], info["numWaiting"]) == (STRESS_TASKS, 0, 0)
    assert info["percentDone"] == 100.0
    # The counters equal a recount of the tasks themselves.
    statuses = collections.Counter(run.getTaskInfo(i, "status") for i in range(STRESS_TASKS))
    assert statuses == {"done": STRESS_TASKS}


def test_the_old_documentation_steps_work(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'app.db'}"
    env = server_env(database_url)
    subprocess.run([ADMIN_TF, "--init-db"], env=env, check=True, capture_output=True)
    subprocess.run(
        [ADMIN_TF, "-u", "some_user", "-p", "some_password"],
        env=env,
        check=True,
        capture_output=True,
    )
    with running_server(database_url, tmp_path / "server.log", workers=1) as live:
        run = TaskFarm("some_user", "some_password", numTasks=2, url_base=live.api)
        assert run.numWaiting == 2
        with pytest.raises(RuntimeError, match="401"):
            TaskFarm(live.user, live.password, numTasks=2, url_base=live.api)


def wait_for(condition: Callable[[], bool], seconds: float) -> float:
    """Polls `condition` until it holds; returns how long that took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < seconds, "the condition never held"
        time.sleep(0.1)
    return time.monotonic() - started


def test_a_silent_workers_task_comes_back_by_itself(server: LiveServer) -> None:
    auth = (server.user, server.password)
    created = requests.post(server.api + "run", json={"numTasks": 2, "leaseSeconds": 2}, auth=auth)
    run = TaskFarm(server.user, server.password, uuid=created.json()["uuid"], url_base=server.api)
    diligent = TaskFarmWorker(server.user, server.password, run.uuid, url_base=server.api)
    silent = TaskFarmWorker(server.user, server.password, run.uuid, url_base=server.api)
    assert (diligent.task, silent.task) == (0, 1)

    # The unchanged client keeps its task by reporting progress; the silent one loses its own.
    for percent in range(10, 50, 10):
        time.sleep(0.6)
        diligent.update(percent)
    assert wait_for(lambda: run.numComputing == 1, seconds=5) < 5
    assert run.numWaiting == 1
    assert run.getTaskInfo(0, "status") == "computing"

    newcomer = TaskFarmWorker(server.user, server.password, run.uuid, url_base=server.api)
    assert newcomer.task == 1
    assert run.getTaskInfo(1, "")["attempts"] == 2
