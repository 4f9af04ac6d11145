"""`taskfarm.client` against real servers: the published client's behaviour, call for call,
and what it adds (heartbeats, zombie protection, hand-backs, batch claims, retries).

The servers come from the `taskfarm` pytest plugin, which these tests also check."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import redis
import taskfarm_worker

import taskfarm.client
from taskfarm.client import Retries, TaskFarm, TaskFarmWorker, TaskLost, tfRuns
from taskfarm.client.api import Api
from taskfarm.client.heartbeat import Heartbeat
from taskfarm.client.login import Login
from taskfarm.config import Settings
from taskfarm.testing import TaskFarmServer, running_taskfarm
from tests.integration.live_server import free_port

pytest_plugins = ["taskfarm.testing"]
pytestmark = pytest.mark.slow

#: Retries for servers that come back within a second or two, so that tests stay short.
QUICK_RETRIES = Retries(attempts=30, backoff=0.05, backoff_max=0.5)


def wait_for(condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.1)


def test_the_plugin_serves_each_test_an_empty_server(taskfarm_server: TaskFarmServer) -> None:
    assert taskfarm_server.api == taskfarm_server.url + "api/"
    assert tfRuns(taskfarm_server.user, taskfarm_server.password, taskfarm_server.api) == []
    with pytest.raises(RuntimeError, match=r"^\[HTTP 401\]"):
        tfRuns(taskfarm_server.user, "not the password", taskfarm_server.api)


def scenario(client: ModuleType, server: TaskFarmServer, **run_options: object) -> list[Any]:
    """What a client module sees when driven through a run's life, uuids left out; the run is
    made with `run_options` besides its number of tasks."""
    user, password, api = server.user, server.password, server.api
    seen: list[Any] = []

    def attempt(call: Callable[[], object]) -> None:
        # The classes callers catch: the new client raises subclasses of them.
        try:
            seen.append(call())
        except RuntimeError as error:
            seen.append(("RuntimeError", str(error).replace(run.uuid, "<uuid>")))
        except ValueError as error:
            seen.append(("ValueError", str(error)))

    run = client.TaskFarm(user, password, numTasks=4, url_base=api, **run_options)
    # Which run, and when it was made, differ from one scenario to the other.
    made = ("id", "uuid", "created")
    seen.append({key: value for key, value in run.info("").items() if key not in made})
    seen.append((run.numTasks, run.numWaiting, run.numDone, run.numComputing, run.percentDone))
    worker = client.TaskFarmWorker(user, password, run.uuid, url_base=api)
    for task in worker.tasks:
        seen.append((task, worker.getTaskInfo(task, "status"), run.numComputing))
        attempt(lambda: worker.update(101))
        worker.update(40.0)
        worker.update(100.0)
        worker.done()
    seen.append((worker.task, worker.getTaskInfo(1, "")))
    seen.append((run.numDone, run.numComputing, run.percentDone))
    run.setTaskInfo(2, "percentCompleted", 50.0)
    attempt(lambda: run.setTaskInfo(2, "status", "finished"))
    attempt(lambda: run.getTaskInfo(4, ""))
    run.restart()
    seen.append([run.getTaskInfo(task, "") for task in range(4)])
    run.restart(everything=True)
    seen.append((run.numWaiting, run.numDone, run.percentDone))
    seen.append(run.uuid in [listed["uuid"] for listed in client.tfRuns(user, password, api)])
    attempt(lambda: client.TaskFarm(user, password, url_base=api))
    attempt(lambda: client.TaskFarm(user, password, uuid="f" * 32, url_base=api))
    attempt(lambda: client.TaskFarm(user, "wrong", numTasks=1, url_base=api))
    run.delete()
    attempt(lambda: run.info(""))
    return seen


def test_it_answers_every_call_as_the_published_client_does(
    taskfarm_server: TaskFarmServer,
) -> None:
    published = scenario(taskfarm_worker, taskfarm_server)
    # A run as the published client makes it: no lease, no limit on attempts.
    same_run = {"leaseSeconds": None, "maxAttempts": None}
    assert scenario(taskfarm.client, taskfarm_server, **same_run) == published
    assert published[-1][1].startswith("[HTTP 404]: Content: b'{")


def new_run(
    server: TaskFarmServer,
    num_tasks: int,
    lease_seconds: int | None = None,
    retries: Retries = QUICK_RETRIES,
) -> TaskFarm:
    return TaskFarm(
        server.user,
        server.password,
        numTasks=num_tasks,
        url_base=server.api,
        leaseSeconds=lease_seconds,
        retries=retries,
    )


def new_worker(server: TaskFarmServer, run: TaskFarm, **options: Any) -> TaskFarmWorker:
    return TaskFarmWorker(server.user, server.password, run.uuid, url_base=server.api, **options)


def test_heartbeats_keep_a_busy_workers_task_past_its_lease(
    taskfarm_server: TaskFarmServer,
) -> None:
    with new_run(taskfarm_server, 2, lease_seconds=2) as run:
        busy = new_worker(taskfarm_server, run)
        silent = new_worker(taskfarm_server, run, heartbeat=False)
        with busy, silent:
            assert (busy.task, silent.task) == (0, 1)
            # Leases are swept every second: the silent worker's task is back within three,
            # while the busy one's, renewed every two thirds of a second, stays.
            wait_for(lambda: run.getTaskInfo(1, "status") == "waiting", seconds=6)
            assert run.getTaskInfo(0, "") | {"leaseExpires": None} == {
                "id": 0,
                "task": 0,
                "percentCompleted": 0.0,
                "status": "computing",
                "attempts": 1,
                "leaseExpires": None,
            }

            # The silent worker comes back to life after another worker took its task: it
            # may not touch the newcomer's progress, and goes on with the next task.
            with new_worker(taskfarm_server, run) as newcomer:
                assert newcomer.task == 1
                newcomer.update(30.0)
                with pytest.raises(TaskLost):
                    silent.update(90.0)
                assert run.getTaskInfo(1, "") | {"leaseExpires": None} == {
                    "id": 1,
                    "task": 1,
                    "percentCompleted": 30.0,
                    "status": "computing",
                    "attempts": 2,
                    "leaseExpires": None,
                }
                assert silent.task is None


def test_release_hands_the_task_back_to_be_claimed_first(taskfarm_server: TaskFarmServer) -> None:
    with new_run(taskfarm_server, 3) as run, new_worker(taskfarm_server, run) as worker:
        assert worker.task == 0
        worker.update(25.0)
        worker.release()
        assert run.getTaskInfo(0, "status") == "waiting"
        assert worker.task == 0
        assert run.getTaskInfo(0, "") == {
            "id": 0,
            "task": 0,
            "percentCompleted": 25.0,
            "status": "computing",
            "attempts": 1,  # released, its first attempt was given back
            "leaseExpires": None,
        }


def test_batch_claims_hand_tasks_out_one_by_one_and_give_back_the_unstarted(
    taskfarm_server: TaskFarmServer,
) -> None:
    with new_run(taskfarm_server, 7) as run:
        with new_worker(taskfarm_server, run, batch=3) as first:
            assert first.task == 0
            assert run.numComputing == 3
            first.update(100.0)
            first.done()
            assert first.task == 1
        # Leaving the block handed back task 1, being worked on, and task 2, never started.
        assert (run.numDone, run.numComputing, run.numWaiting) == (1, 0, 6)

        with new_worker(taskfarm_server, run, batch=4) as second:
            finished = []
            for task in second.tasks:
                second.update(100.0)
                second.done()
                finished.append(task)
        assert finished == [1, 2, 3, 4, 5, 6]
        assert (run.numDone, run.percentDone) == (7, 100.0)


def test_an_expired_token_is_renewed_with_the_password() -> None:
    settings = Settings(database_url="memory://", token_lifetime=dt.timedelta(seconds=1))
    with running_taskfarm(settings) as server, new_run(server, 2) as run:
        with new_worker(server, run) as worker:
            assert worker.task == 0
            time.sleep(2.1)
            worker.update(100.0)
            worker.done()
        assert run.numDone == 1


def test_a_client_waits_for_a_server_that_is_starting_or_restarting(tmp_path: Path) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}/api/"
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'taskfarm.db'}")
    login = {"user": "ada", "password": "lovelace-engine"}

    # Nothing listens yet: the client retries until the server is up.
    with ThreadPoolExecutor(1) as background:
        created = background.submit(
            TaskFarm, login["user"], login["password"], None, 3, api, retries=QUICK_RETRIES
        )
        time.sleep(0.5)
        with running_taskfarm(settings, port=port, **login):
            run = created.result(timeout=60)
            worker = TaskFarmWorker(
                login["user"], login["password"], run.uuid, url_base=api, retries=QUICK_RETRIES
            )
            assert worker.task == 0

        # The server restarts while the worker reports and claims: nothing is lost or doubled.
        def finish_and_claim() -> int | None:
            worker.update(100.0)
            worker.done()
            return worker.task

        claimed = background.submit(finish_and_claim)
        time.sleep(0.5)
        with running_taskfarm(settings, port=port, **login), run, worker:
            assert claimed.result(timeout=60) == 1
            assert (run.numDone, run.numComputing, run.getTaskInfo(1, "")["attempts"]) == (1, 1, 1)


@pytest.fixture
def restartable_redis(tmp_path: Path) -> Iterator[Callable[[bool], str]]:
    """A Redis server of the test's own, which keeps its data on disk across restarts.
    Called with True it (re)starts, with False it stops; either way it returns its URL."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail("redis-server is needed for this test")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    command = [executable, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path)]
    command += ["--save", "", "--appendonly", "yes", "--appendfsync", "always"]
    running: list[subprocess.Popen[bytes]] = []

    def switch(on: bool) -> str:
        if on:
            running.append(subprocess.Popen(command, stdout=subprocess.DEVNULL))
            wait_for(lambda: _answers(url), seconds=20)
        else:
            stopping = running.pop()
            stopping.terminate()  # Redis writes its last changes before it exits
            stopping.wait()
        return url

    try:
        yield switch
    finally:
        for process in running:
            process.kill()
            process.wait()


def _answers(url: str) -> bool:
    try:
        with redis.Redis.from_url(url) as client:
            return bool(client.ping())
    except redis.ConnectionError:
        return False


@pytest.mark.redis
def test_a_claim_answered_503_while_the_database_is_away_is_retried(
    restartable_redis: Callable[[bool], str],
) -> None:
    url = restartable_redis(True)
    with running_taskfarm(Settings(database_url=url)) as server:
        run = new_run(server, 2, retries=Retries(attempts=0))
        worker = new_worker(server, run, retries=QUICK_RETRIES)
        with run, worker, ThreadPoolExecutor(1) as background:
            restartable_redis(False)
            with pytest.raises(RuntimeError, match=r"^\[HTTP 503\]"):
                run.info("")  # the server is up, its database is not
            claimed = background.submit(lambda: worker.task)
            time.sleep(0.5)
            restartable_redis(True)
            assert claimed.result(timeout=60) == 0
            assert (run.numComputing, run.getTaskInfo(0, "")["attempts"]) == (1, 1)


# Failing tasks


def test_a_worker_whose_code_raises_on_one_task_fails_it_and_finishes_the_others(
    taskfarm_server: TaskFarmServer, caplog: pytest.LogCaptureFixture
) -> None:
    # As a newcomer makes it: the client's default lease and attempts.
    run = TaskFarm(
        taskfarm_server.user, taskfarm_server.password, numTasks=6, url_base=taskfarm_server.api
    )
    computed: list[int] = []
    with run, new_worker(taskfarm_server, run) as worker:
        for task in worker.tasks:
            with worker.attempt():
                computed.append(task)
                if task == 2:
                    raise ValueError(f"no input for task {task}")

        assert (run.numDone, run.numFailed, run.numComputing) == (5, 1, 0)
        # Tried again while it had attempts left: three in all.
        assert computed.count(2) == 3
        failure = run._api.list_tasks(run.uuid, "failed")
        [report] = list(failure)
        assert (report["task"], report["attempts"]) == (2, 3)
        assert report["lastAttempt"]["error"].endswith("ValueError: no input for task 2\n")
        assert report["lastAttempt"]["error"].startswith("Traceback (most recent call last):")
    assert caplog.text.count("task 2 failed") == 3


def test_fail_reports_the_error_and_an_interrupt_hands_the_task_back(
    taskfarm_server: TaskFarmServer,
) -> None:
    with new_run(taskfarm_server, 3) as run, new_worker(taskfarm_server, run) as worker:
        assert worker.task == 0
        worker.fail("disk full\n" + "x" * 5000, exit_code=28)
        # Back to the queue: the run allows 3 attempts.
        assert run.getTaskInfo(0, "status") == "waiting"
        report = next(iter(run._api.list_tasks(run.uuid, "waiting")))
        assert (report["task"], report["lastAttempt"]["exitCode"]) == (0, 28)
        assert report["lastAttempt"]["error"] == "x" * 4096

        def interrupted() -> None:
            with worker.attempt():
                raise KeyboardInterrupt

        # Task 0 again, first in the queue: interrupted, it is handed back, its attempt given
        # back, and only the failure counts.
        with pytest.raises(KeyboardInterrupt):
            interrupted()
        assert (run.getTaskInfo(0, "status"), run.getTaskInfo(0, "")["attempts"]) == ("waiting", 1)


def test_done_marks_the_task_done_at_100_percent_whatever_was_reported(
    taskfarm_server: TaskFarmServer,
) -> None:
    with new_run(taskfarm_server, 2) as run, new_worker(taskfarm_server, run) as worker:
        assert worker.task == 0
        worker.update(40.0)
        worker.done()
        assert run.getTaskInfo(0, "") | {"leaseExpires": None} == {
            "id": 0,
            "task": 0,
            "percentCompleted": 100.0,
            "status": "done",
            "attempts": 1,
            "leaseExpires": None,
        }


def test_a_worker_reads_the_input_of_each_task_of_a_run_of_inputs(
    taskfarm_server: TaskFarmServer,
) -> None:
    server = taskfarm_server
    with TaskFarm(
        server.user, server.password, inputs=["a.csv", {"k": 1}, 3], url_base=server.api
    ) as listed:
        assert listed.numTasks == 3
        with new_worker(server, listed, batch=2) as worker:
            seen = []
            for task in worker.tasks:
                seen.append((task, worker.input))
                worker.done()
        assert seen == [(0, "a.csv"), (1, {"k": 1}), (2, 3)]
        assert worker.input is None  # the run has no task left

    swept = TaskFarm(
        server.user, server.password, sweep={"x": [1, 2], "y": ["a"]}, url_base=server.api
    )
    with swept, new_worker(server, swept) as worker:
        assert (swept.numTasks, worker.task, worker.input) == (2, 0, {"x": 1, "y": "a"})
    with new_run(server, 1) as plain, new_worker(server, plain) as worker:
        assert (worker.task, worker.input) == (0, None)


def test_one_heartbeat_keeps_every_held_task_and_gives_up_those_that_are_gone(
    taskfarm_server: TaskFarmServer,
) -> None:
    login = Login(taskfarm_server.user, taskfarm_server.password)
    api = Api.log_in(login, taskfarm_server.api)
    with new_run(taskfarm_server, 4, lease_seconds=2) as run:
        api.register_worker("w-beats")
        held = [claim.task for claim in api.claim(run.uuid, "w-beats", 3)]
        lost: list[int] = []
        heartbeat = Heartbeat(api.copy(), run.uuid, "w-beats", 0.5, lost.append)
        for task in held:
            heartbeat.hold(task)
        # Done by a person meanwhile: no lease left to renew.
        api.update_task(run.uuid, held[2], {"status": "done"})
        heartbeat.start()
        try:
            wait_for(lambda: lost == [held[2]], seconds=5)
            # Past the lease: the two tasks still held stay this worker's.
            time.sleep(3)
            assert [run.getTaskInfo(task, "status") for task in held] == [
                "computing",
                "computing",
                "done",
            ]
        finally:
            heartbeat.close()
            api.close()


def test_a_worker_logs_in_with_a_worker_token_from_the_environment(
    taskfarm_server: TaskFarmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    login = Login(taskfarm_server.user, taskfarm_server.password)
    with TaskFarm(login.username, login.password, numTasks=3, url_base=taskfarm_server.api) as run:
        pass
    api = Api.log_in(login, taskfarm_server.api)
    made = api.create_token(run.uuid, 3600, "client-test")
    api.close()
    monkeypatch.setenv("TASKFARM_TOKEN", made["token"])

    with TaskFarmWorker(uuid=run.uuid, url_base=taskfarm_server.api) as worker:
        finished = []
        for task in worker.tasks:
            with worker.attempt():
                finished.append(task)

    assert sorted(finished) == [0, 1, 2]
    with TaskFarm(uuid=run.uuid, url_base=taskfarm_server.api, token=made["token"]) as again:
        assert again.percentDone == 100.0
    with pytest.raises(RuntimeError, match=r"^\[HTTP 403\]"):
        tfRuns(url_base=taskfarm_server.api)


def test_without_a_user_or_token_a_client_says_how_to_log_in(
    taskfarm_server: TaskFarmServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TASKFARM_TOKEN", raising=False)
    with pytest.raises(ValueError, match="TASKFARM_TOKEN"):
        TaskFarm(numTasks=1, url_base=taskfarm_server.api)
