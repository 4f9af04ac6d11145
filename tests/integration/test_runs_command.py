"""`taskfarm runs ...`, run as a person or a batch script runs it, against a live server."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from taskfarm.client import TaskFarm
from tests.integration.live_server import LiveServer, running_server

pytestmark = pytest.mark.slow

TASKFARM = str(Path(sys.executable).with_name("taskfarm"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("runs")
    database_url = f"sqlite:///{folder / 'taskfarm.db'}"
    with running_server(database_url, folder / "server.log", workers=1) as live:
        yield live


def login_env(server: LiveServer, password: str | None = None) -> dict[str, str]:
    return {
        **os.environ,
        "TASKFARM_URL": server.url,
        "TASKFARM_USER": server.user,
        "TASKFARM_PASSWORD": server.password if password is None else password,
    }


def runs(
    server: LiveServer, *args: str, password: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TASKFARM, "runs", *args],
        env=login_env(server, password),
        capture_output=True,
        text=True,
        timeout=60,
    )


def succeeds(server: LiveServer, *args: str) -> str:
    result = runs(server, *args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def table(output: str) -> list[list[str]]:
    return [line.split() for line in output.splitlines()]


def open_run(server: LiveServer, uuid: str) -> TaskFarm:
    return TaskFarm(server.user, server.password, uuid=uuid, url_base=server.api)


def test_a_run_is_created_inspected_reset_and_deleted(server: LiveServer) -> None:
    uuid = succeeds(server, "create", "4").strip()
    assert len(uuid) == 32
    created = json.loads(
        succeeds(server, "create", "2", "--lease", "60", "--max-attempts", "3", "--json")
    )
    assert created | {"id": 0, "uuid": "", "created": ""} == {
        "id": 0,
        "uuid": "",
        "numTasks": 2,
        "name": None,
        "created": "",
        "owner": server.user,
    }

    run = open_run(server, uuid)
    run.setTaskInfo(0, "percentCompleted", 100.0)
    run.setTaskInfo(0, "status", "done")
    run.setTaskInfo(1, "percentCompleted", 50.0)

    listed = table(succeeds(server, "list"))
    assert listed[0] == [
        "ID",
        "UUID",
        "NAME",
        "TASKS",
        "DONE",
        "FAILED",
        "COMPUTING",
        "PROGRESS",
        "STATE",
        "AGE",
    ]
    # Other tests of this module share the server: the two runs, in the order made.
    mine = [row[1:-1] for row in listed[1:] if row[1] in (uuid, created["uuid"])]
    assert mine == [
        [uuid, "-", "4", "1", "0", "0", "37.5%", "idle"],
        [created["uuid"], "-", "2", "0", "0", "0", "0.0%", "new"],
    ]
    assert all(re.fullmatch(r"\d+s", row[-1]) for row in listed[1:])
    shown = succeeds(server, "info", uuid).splitlines()[1:]
    assert dict(line.split(None, 1) for line in shown) == {
        "id": next(row[0] for row in listed if row[1] == uuid),
        "uuid": uuid,
        "numTasks": "4",
        "name": "-",
        "created": open_run(server, uuid).info("")["created"],
        "owner": server.user,
        "percentDone": "37.5 %",
        "numWaiting": "3",
        "numDone": "1",
        "numComputing": "0",
        "numFailed": "0",
        # A run made here gets a lease and a limit on attempts unless told otherwise.
        "leaseSeconds": "600",
        "maxAttempts": "3",
    }
    assert json.loads(succeeds(server, "info", created["uuid"], "--json")) | {"id": 0} == {
        "id": 0,
        "uuid": created["uuid"],
        "name": None,
        "created": created["created"],
        "owner": server.user,
        "numTasks": 2,
        "percentDone": 0.0,
        "numWaiting": 2,
        "numDone": 0,
        "numComputing": 0,
        "numFailed": 0,
        "leaseSeconds": 60,
        "maxAttempts": 3,
    }

    succeeds(server, "reset", uuid)
    assert (run.numDone, run.getTaskInfo(1, "percentCompleted")) == (1, 50.0)
    succeeds(server, "reset", uuid, "--all")
    assert (run.numDone, run.percentDone) == (0, 0.0)

    succeeds(server, "delete", uuid)
    assert uuid not in succeeds(server, "list")
    missing = runs(server, "info", uuid)
    assert missing.returncode == 1
    assert f"Error: no run with uuid {uuid!r} (HTTP 404)" in missing.stderr


def test_a_run_may_go_without_a_lease_or_a_limit_on_attempts(server: LiveServer) -> None:
    created = json.loads(
        succeeds(server, "create", "2", "--lease", "0", "--max-attempts", "0", "--json")
    )

    info = json.loads(succeeds(server, "info", created["uuid"], "--json"))
    assert (info["leaseSeconds"], info["maxAttempts"]) == (None, 1_000_000)


def test_percentages_are_shown_to_a_tenth_rounded_down_and_exact_in_json(
    server: LiveServer,
) -> None:
    uuid = succeeds(server, "create", "12").strip()
    open_run(server, uuid).setTaskInfo(0, "percentCompleted", 100.0)

    shown = dict(line.split(None, 1) for line in succeeds(server, "info", uuid).splitlines())
    assert shown["percentDone"] == "8.3 %"
    exact = json.loads(succeeds(server, "info", uuid, "--json"))["percentDone"]
    assert exact == 100 / 12


def test_a_negative_number_of_tasks_is_refused_as_such(server: LiveServer) -> None:
    result = runs(server, "create", "-1")

    assert result.returncode == 2
    assert "Invalid value for 'NUM_TASKS': -1 is not in the range x>=1." in result.stderr


def test_errors_are_messages_not_tracebacks(server: LiveServer) -> None:
    refused = runs(server, "list", password="wrong")
    assert refused.returncode == 1
    assert "(HTTP 401)" in refused.stderr
    assert "Traceback" not in refused.stderr
    unreachable = runs(server, "list", "--url", "http://127.0.0.1:9/")
    assert unreachable.returncode == 1
    assert "cannot reach the server at http://127.0.0.1:9/" in unreachable.stderr


def watch(server: LiveServer, uuid: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [TASKFARM, "runs", "watch", uuid, "--interval", "0.2"],
        env=login_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_watch_shows_progress_until_the_run_is_done(server: LiveServer) -> None:
    run = TaskFarm(server.user, server.password, numTasks=4, url_base=server.api)
    watcher = watch(server, run.uuid)
    assert watcher.stdout is not None
    first = watcher.stdout.readline()
    for task in range(4):
        run.setTaskInfo(task, "percentCompleted", 100.0)
        run.setTaskInfo(task, "status", "done")
        time.sleep(0.3)
    rest, errors = watcher.communicate(timeout=30)
    assert watcher.returncode == 0, errors
    lines = [first, *rest.splitlines()]
    assert lines[0].startswith("[------------------------------]   0.0%  0/4 done  0 computing")
    assert lines[0].rstrip().endswith("-- tasks/s  ETA --")
    assert any("tasks/s  ETA 0:" in line for line in lines[1:-1])
    assert lines[-1] == f"[{'#' * 30}] 100.0%  4/4 done  0 computing"


def test_watch_stops_on_ctrl_c(server: LiveServer) -> None:
    run = TaskFarm(server.user, server.password, numTasks=2, url_base=server.api)
    watcher = watch(server, run.uuid)
    assert watcher.stdout is not None
    watcher.stdout.readline()
    watcher.send_signal(signal.SIGINT)
    _, errors = watcher.communicate(timeout=10)
    assert watcher.returncode == 130
    assert "Traceback" not in errors


def test_retry_of_chosen_tasks_reruns_those_finished_and_says_how_many(server: LiveServer) -> None:
    uuid = succeeds(server, "create", "6").strip()
    run = open_run(server, uuid)
    for index in (0, 1, 4):
        run.setTaskInfo(index, "status", "done")
    run.setTaskInfo(2, "status", "failed")

    retried = succeeds(server, "retry", uuid, "--tasks", "0-2,5")

    assert retried == f"Retried 3 tasks of run {uuid}.\n"
    info = json.loads(succeeds(server, "info", uuid, "--json"))
    assert (info["numDone"], info["numFailed"], info["numWaiting"]) == (1, 0, 5)
    assert succeeds(server, "retry", uuid, "--failed") == f"Retried 0 tasks of run {uuid}.\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "say which tasks to retry: --failed or --tasks LIST"),
        (["--failed", "--tasks", "1"], "say which tasks to retry"),
        (["--tasks", "3-1"], "'3-1' is not a range of task indices: write 10-20"),
        (["--tasks", "x"], "'x' is not a task index or a range"),
    ],
)
def test_a_retry_that_does_not_say_which_tasks_is_refused(
    server: LiveServer, args: list[str], message: str
) -> None:
    uuid = succeeds(server, "create", "2").strip()

    result = runs(server, "retry", uuid, *args)

    assert result.returncode == 2
    assert message in result.stderr


def test_failed_tasks_that_told_no_error_show_how_their_attempt_ended(server: LiveServer) -> None:
    uuid = succeeds(server, "create", "3", "--lease", "1").strip()
    run = open_run(server, uuid)
    run.setTaskInfo(1, "status", "failed")

    listed = table(succeeds(server, "failed", uuid))

    assert listed == [
        ["TASK", "ATTEMPTS", "EXIT", "HOST", "LAST", "ERROR", "LINE"],
        ["1", "0", "-", "-", "-"],
    ]
    records = json.loads(succeeds(server, "failed", uuid, "--json"))
    assert records == [
        {
            "index": 1,
            "attempts": 0,
            "exitCode": None,
            "error": None,
            "outcome": None,
            "worker": None,
            "hostname": None,
            "started": None,
            "ended": None,
        }
    ]


def test_the_list_of_runs_says_how_far_each_has_got(server: LiveServer) -> None:
    new = succeeds(server, "create", "3").strip()
    begun = succeeds(server, "create", "4").strip()
    run = open_run(server, begun)
    run.setTaskInfo(0, "percentCompleted", 100.0)
    run.setTaskInfo(0, "status", "done")
    run.setTaskInfo(1, "status", "failed")
    finished = succeeds(server, "create", "1").strip()
    open_run(server, finished).setTaskInfo(0, "status", "failed")

    listed = {row[1]: row[3:-1] for row in table(succeeds(server, "list"))}

    assert listed["UUID"] == ["TASKS", "DONE", "FAILED", "COMPUTING", "PROGRESS", "STATE"]
    assert listed[new] == ["3", "0", "0", "0", "0.0%", "new"]
    assert listed[begun] == ["4", "1", "1", "0", "25.0%", "idle"]
    assert listed[finished] == ["1", "0", "1", "0", "0.0%", "finished"]
    as_json = {run["uuid"]: run for run in json.loads(succeeds(server, "list", "--json"))}
    assert as_json[begun] | {"id": 0, "created": ""} == {
        "id": 0,
        "uuid": begun,
        "name": None,
        "created": "",
        "owner": server.user,
        "numTasks": 4,
        "percentDone": 25.0,
        "numWaiting": 2,
        "numDone": 1,
        "numComputing": 0,
        "numFailed": 1,
    }


def test_a_named_run_goes_by_its_name_in_every_command(server: LiveServer) -> None:
    uuid = succeeds(server, "create", "3", "--name", "demo-run").strip()
    assert json.loads(succeeds(server, "info", "demo-run", "--json"))["uuid"] == uuid
    listed = {row[1]: row for row in table(succeeds(server, "list"))}
    assert listed[uuid][2] == "demo-run"

    worked = subprocess.run(
        [TASKFARM, "work", "demo-run", "--", sys.executable, "-c", "print('task', '{}')"],
        env=login_env(server, None),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert worked.returncode == 0, worked.stderr
    assert sorted(worked.stdout.splitlines()) == ["task 0", "task 1", "task 2"]
    assert open_run(server, "demo-run").numDone == 3

    taken = runs(server, "create", "1", "--name", "demo-run")
    assert taken.returncode != 0
    assert "already a run called 'demo-run'" in taken.stderr
    succeeds(server, "delete", "demo-run")
    assert runs(server, "info", "demo-run").returncode != 0
