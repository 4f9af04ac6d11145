"""`taskfarm work RUN -- COMMAND`, run as a batch script runs it, against a live server."""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from taskfarm.client import TaskFarm
from tests.integration.live_server import LiveServer, free_port, running_server

pytestmark = pytest.mark.slow

TASKFARM = str(Path(sys.executable).with_name("taskfarm"))
PYTHON = sys.executable

#: A command's work, as Python run by `python -c CODE TASK FOLDER [...]`: it appends a line to
#: FOLDER/log (appends of one short line never interleave), so tests see what ran, when.
LOG_TASK = """
import os, sys, time
task, folder = sys.argv[1], sys.argv[2]
started = time.time()
time.sleep(float(os.environ.get("SECONDS_PER_TASK", "0")))
with open(os.path.join(folder, "log"), "a") as log:
    print(task, os.environ["TASKFARM_TASK"], os.environ["TASKFARM_RUN"], started, time.time(),
          file=log)
"""
#: Prints a line and a progress report, then waits for FOLDER/go; exits with status EXIT.
REPORT_AND_WAIT = """
import os, sys, time
task, folder, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
print("working on", task, flush=True)
print("TASKFARM_PROGRESS 40", flush=True)
while not os.path.exists(os.path.join(folder, "go")):
    time.sleep(0.05)
sys.exit(status)
"""
#: Fails for the task given as FAILING, succeeds for the others.
FAIL_ONE = "import sys; sys.exit(3 if sys.argv[1] == sys.argv[2] else 0)"
#: Writes its pid to FOLDER/pid, then sleeps without a word until stopped.
SLEEP = """
import os, sys, time
with open(os.path.join(sys.argv[2], "pid"), "w") as out:
    out.write(str(os.getpid()))
time.sleep(60)
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    folder = tmp_path_factory.mktemp("work")
    with running_server(f"sqlite:///{folder / 'taskfarm.db'}", folder / "server.log") as live:
        yield live


def new_run(server: LiveServer, num_tasks: int, **policy: int) -> TaskFarm:
    return TaskFarm(
        server.user,
        server.password,
        numTasks=num_tasks,
        url_base=server.api,
        leaseSeconds=policy.get("lease"),
        maxAttempts=policy.get("max_attempts"),
    )


def work_command(run: TaskFarm, options: list[str], command: list[str]) -> list[str]:
    return [TASKFARM, "work", run.uuid, *options, "--", *command]


def work_env(server: LiveServer, **extra: str) -> dict[str, str]:
    login = {"TASKFARM_URL": server.url, "TASKFARM_USER": server.user}
    return {**os.environ, **login, "TASKFARM_PASSWORD": server.password, **extra}


def work(
    server: LiveServer, run: TaskFarm, options: list[str], command: list[str], **env: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        work_command(run, options, command),
        env=work_env(server, **env),
        capture_output=True,
        text=True,
        timeout=60,
    )


def start_work(
    server: LiveServer, run: TaskFarm, options: list[str], command: list[str]
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        work_command(run, options, command),
        env=work_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def logged(folder: Path) -> list[list[str]]:
    log = folder / "log"
    return [line.split() for line in log.read_text().splitlines()] if log.exists() else []


def wait_for(condition: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.05)


def task_info(run: TaskFarm, task: int) -> dict[str, object]:
    info: dict[str, object] = run.getTaskInfo(task, "")
    info.pop("leaseExpires")
    return info


def test_runs_the_command_for_every_task_two_at_a_time(server: LiveServer, tmp_path: Path) -> None:
    run = new_run(server, 6)
    command = [PYTHON, "-c", LOG_TASK, "{}", str(tmp_path)]
    result = work(server, run, ["-j", "2"], command, SECONDS_PER_TASK="0.5")
    assert result.returncode == 0, result.stderr
    assert "6 tasks done, 0 commands failed; no task left" in result.stderr

    lines = logged(tmp_path)
    assert sorted(int(task) for task, *_ in lines) == list(range(6))
    assert all(argument == env and run_uuid == run.uuid for argument, env, run_uuid, *_ in lines)
    spans = [(float(started), float(ended)) for *_, started, ended in lines]
    running_at = [sum(s <= moment < e for s, e in spans) for moment, _ in spans]
    assert max(running_at) == 2
    assert (run.numDone, run.percentDone) == (6, 100.0)


def test_progress_lines_are_reported_and_other_output_passes_through(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 1)
    worker = start_work(
        server, run, [], [PYTHON, "-c", REPORT_AND_WAIT, "{task}", str(tmp_path), "0"]
    )
    try:
        wait_for(lambda: run.getTaskInfo(0, "percentCompleted") == 40.0)
        assert run.getTaskInfo(0, "status") == "computing"
    finally:
        (tmp_path / "go").touch()
        output, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert output == "working on 0\n"
    assert task_info(run, 0) == {
        "id": 0,
        "task": 0,
        "percentCompleted": 100.0,
        "status": "done",
        "attempts": 1,
    }


def test_a_failed_command_with_attempts_left_goes_back_with_its_progress(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 3, max_attempts=2)
    (tmp_path / "go").touch()
    command = [PYTHON, "-c", REPORT_AND_WAIT, "{}", str(tmp_path), "2"]
    result = work(server, run, ["--max-tasks", "1"], command)
    assert result.returncode == 1
    assert "task 0: the command exited with status 2; task to be tried again" in result.stderr
    assert "0 tasks done, 1 command failed; claimed as many tasks as allowed" in result.stderr
    assert task_info(run, 0) == {
        "id": 0,
        "task": 0,
        "percentCompleted": 40.0,
        "status": "waiting",
        "attempts": 1,
    }


def test_a_failed_command_of_a_run_without_a_limit_on_attempts_fails_its_task(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 3)
    (tmp_path / "go").touch()
    command = [PYTHON, "-c", REPORT_AND_WAIT, "{}", str(tmp_path), "2"]
    result = work(server, run, ["--max-tasks", "1"], command)
    assert result.returncode == 1
    assert "task 0: the command exited with status 2; task failed" in result.stderr
    assert (task_info(run, 0)["status"], run.numFailed) == ("failed", 1)


def test_max_tasks_bounds_the_tasks_a_worker_claims(server: LiveServer, tmp_path: Path) -> None:
    run = new_run(server, 5)
    result = work(
        server, run, ["--max-tasks", "2", "-j", "3"], [PYTHON, "-c", LOG_TASK, "{}", str(tmp_path)]
    )
    assert result.returncode == 0, result.stderr
    assert sorted(task for task, *_ in logged(tmp_path)) == ["0", "1"]
    assert (run.numDone, run.numComputing, run.numWaiting) == (2, 0, 3)


def test_a_task_failing_every_time_fails_after_the_runs_max_attempts(server: LiveServer) -> None:
    run = new_run(server, 3, max_attempts=2)
    result = work(server, run, [], [PYTHON, "-c", FAIL_ONE, "{}", "1"])
    assert result.returncode == 1
    assert (
        result.stderr.count("task 1: the command exited with status 3; task to be tried again") == 1
    )
    assert result.stderr.count("task 1: the command exited with status 3; task failed") == 1
    assert (run.numDone, run.numFailed, run.numWaiting) == (2, 1, 0)


def test_a_command_that_cannot_start_stops_the_worker(server: LiveServer, tmp_path: Path) -> None:
    run = new_run(server, 2)
    result = work(server, run, [], [str(tmp_path / "no-such-program"), "{}"])
    assert result.returncode == 1
    assert "cannot run" in result.stderr
    # Handed back, the task gave its attempt back.
    assert (run.numWaiting, run.numComputing, run.getTaskInfo(0, "")["attempts"]) == (2, 0, 0)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def started_command(tmp_path: Path, run: TaskFarm) -> int:
    """The pid of the sleeping command, once it runs and its task is claimed."""
    wait_for(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text() != "")
    assert run.getTaskInfo(0, "status") == "computing"
    return int((tmp_path / "pid").read_text())


def test_sigterm_stops_the_command_and_hands_the_task_back_at_once(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 1)  # no lease: only the worker can give the task back
    worker = start_work(server, run, [], [PYTHON, "-c", SLEEP, "{}", str(tmp_path)])
    command = started_command(tmp_path, run)

    stopped = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=30)
    assert time.monotonic() - stopped < 5
    assert worker.returncode == 128 + signal.SIGTERM
    assert "1 task handed back; stopped by SIGTERM" in errors
    wait_for(lambda: not alive(command), seconds=5)
    assert task_info(run, 0) == {
        "id": 0,
        "task": 0,
        "percentCompleted": 0.0,
        "status": "waiting",
        "attempts": 0,  # handed back: it gave its attempt back
    }


def test_a_command_ignoring_sigterm_is_killed_after_the_grace_period(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 1)
    stubborn = f"trap '' TERM; echo $$ > {tmp_path}/pid; sleep 60"
    worker = start_work(server, run, ["--grace", "0.5"], ["sh", "-c", stubborn])
    command = started_command(tmp_path, run)

    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 128 + signal.SIGTERM
    assert "task 0: the command did not stop; killing it" in errors
    wait_for(lambda: not alive(command), seconds=5)
    assert run.getTaskInfo(0, "status") == "waiting"


def test_sigusr1_lets_running_commands_finish_and_claims_no_more(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 3)
    worker = start_work(server, run, [], [PYTHON, "-c", REPORT_AND_WAIT, "{}", str(tmp_path), "0"])
    wait_for(lambda: run.getTaskInfo(0, "percentCompleted") == 40.0)
    worker.send_signal(signal.SIGUSR1)
    time.sleep(0.2)
    (tmp_path / "go").touch()
    _, errors = worker.communicate(timeout=30)
    assert worker.returncode == 0, errors
    assert "1 task done, 0 commands failed; asked to finish" in errors
    assert (run.numDone, run.numComputing, run.numWaiting) == (1, 0, 2)


def test_a_killed_workers_task_comes_back_when_its_lease_runs_out(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 1, lease=1)
    # Five heartbeats a lease, not three, so that a loaded test machine cannot lose the lease.
    options = ["--heartbeat", "0.2"]
    worker = start_work(server, run, options, [PYTHON, "-c", SLEEP, "{}", str(tmp_path)])
    command = started_command(tmp_path, run)
    try:
        # The command says nothing, yet heartbeats keep its task for two leases and more.
        time.sleep(2.5)
        assert (run.getTaskInfo(0, "status"), run.getTaskInfo(0, "")["attempts"]) == (
            "computing",
            1,
        )
        worker.kill()
        worker.wait(timeout=30)
        wait_for(lambda: run.getTaskInfo(0, "status") == "waiting", seconds=5)
    finally:
        # Killed outright, the worker could not stop its command: it runs on, as an orphan,
        # holding the worker's stderr open.
        os.killpg(command, signal.SIGKILL)
        worker.communicate(timeout=30)


def test_three_workers_finish_a_run_doing_every_task_exactly_once(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 60)
    command = ["sh", "-c", f'echo "$TASKFARM_TASK" >> "{tmp_path}/log"']
    workers = [start_work(server, run, ["-j", "2"], command) for _ in range(3)]
    for worker in workers:
        _, errors = worker.communicate(timeout=60)
        assert worker.returncode == 0, errors
    done = collections.Counter(int(task) for task, *_ in logged(tmp_path))
    assert done == collections.Counter(range(60))
    assert (run.numDone, run.numComputing, run.numWaiting, run.percentDone) == (60, 0, 0, 100.0)


def test_a_time_limit_stops_claiming_and_lets_running_commands_finish(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 20)
    command = [PYTHON, "-c", LOG_TASK, "{}", str(tmp_path)]
    result = work(server, run, ["--time-limit", "1"], command, SECONDS_PER_TASK="0.4")
    assert result.returncode == 0, result.stderr
    assert "reached the time limit" in result.stderr
    finished = len(logged(tmp_path))
    assert 1 <= finished < 20
    assert (run.numDone, run.numComputing, run.numWaiting) == (finished, 0, 20 - finished)


def test_a_hard_time_limit_stops_running_commands_and_hands_their_tasks_back(
    server: LiveServer, tmp_path: Path
) -> None:
    run = new_run(server, 3)
    command = [PYTHON, "-c", SLEEP, "{}", str(tmp_path)]
    started = time.monotonic()
    result = work(server, run, ["--hard-time-limit", "1.5s"], command)
    assert time.monotonic() - started < 15
    assert result.returncode == 0, result.stderr
    assert (
        "0 tasks done, 0 commands failed, 1 task handed back; reached the hard time limit"
        in result.stderr
    )
    assert (run.numDone, run.numComputing, run.numWaiting) == (0, 0, 3)


def test_a_worker_pointed_at_a_closed_port_fails_within_seconds_saying_why(
    server: LiveServer,
) -> None:
    run = new_run(server, 1)
    closed = LiveServer(url=f"http://127.0.0.1:{free_port()}/")
    started = time.monotonic()

    result = work(closed, run, [], [PYTHON, "-c", "pass"])

    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert f"Error: cannot reach the server at {closed.url}" in result.stderr
    assert "server unreachable (NewConnectionError), retrying (1/2)" in result.stderr


def test_a_wrong_password_or_run_fails_at_once(server: LiveServer) -> None:
    run = new_run(server, 1)

    wrong = work(server, run, [], [PYTHON, "-c", "pass"], TASKFARM_PASSWORD="wrong")
    assert wrong.returncode == 1
    assert "wrong username or password (HTTP 401)" in wrong.stderr
    missing = subprocess.run(
        [TASKFARM, "work", "f" * 32, "--", PYTHON, "-c", "pass"],
        env=work_env(server),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1
    assert f"no run with uuid {'f' * 32!r} (HTTP 404)" in missing.stderr


def test_a_token_logs_in_with_an_empty_password_from_the_environment(server: LiveServer) -> None:
    run = new_run(server, 2)
    token = run._api.call("GET", "token", 200).json()["token"]

    result = work(
        server, run, [], [PYTHON, "-c", "pass"], TASKFARM_USER=token, TASKFARM_PASSWORD=""
    )

    assert result.returncode == 0, result.stderr
    assert run.numDone == 2


def test_one_task_failing_again_and_again_stops_no_worker(server: LiveServer) -> None:
    run = new_run(server, 30, max_attempts=3)
    command = [PYTHON, "-c", FAIL_ONE, "{}", "3"]

    workers = [start_work(server, run, ["--max-failures", "2"], command) for _ in range(3)]
    errors = [worker.communicate(timeout=60)[1] for worker in workers]

    assert (run.numDone, run.numFailed, run.numWaiting) == (29, 1, 0)
    assert sum(error.count("task 3: the command exited with status 3") for error in errors) == 3
    assert not any("failed in a row" in error for error in errors)


def test_the_quick_start_with_one_always_failing_task_ends_with_all_others_done(
    server: LiveServer,
) -> None:
    """As the README's quick start has it, with the defaults of `taskfarm runs create`: four
    workers, a thousand tasks, task 3 failing every time."""
    env = work_env(server)
    created = subprocess.run(
        [TASKFARM, "runs", "create", "1000"], env=env, capture_output=True, text=True, timeout=60
    )
    run_uuid = created.stdout.strip()
    command = ["sh", "-c", 'test "$1" -ne 3', "sh", "{}"]

    workers = [
        subprocess.Popen(
            [TASKFARM, "work", run_uuid, "--", *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outcomes = [(worker.communicate(timeout=120)[1], worker.returncode) for worker in workers]

    run = TaskFarm(server.user, server.password, uuid=run_uuid, url_base=server.api)
    assert (run.numDone, run.numFailed, run.numWaiting, run.numComputing) == (999, 1, 0, 0)
    # Each worker went on to the end of the run; those that met the failure say so.
    assert all("no task left" in errors for errors, _ in outcomes)
    assert sorted(code for _, code in outcomes) in ([0, 0, 0, 1], [0, 0, 1, 1], [0, 1, 1, 1])


def test_with_several_jobs_each_line_a_command_prints_is_tagged_with_its_task(
    server: LiveServer,
) -> None:
    run = new_run(server, 4)
    command = [
        PYTHON,
        "-c",
        "import sys; print('out', sys.argv[1]); print('err', sys.argv[1], file=sys.stderr)",
        "{}",
    ]

    tagged = work(server, run, ["-j", "2"], command)
    assert sorted(line for line in tagged.stdout.splitlines()) == [
        f"{task}\tout {task}" for task in range(4)
    ]
    assert "3\terr 3" in tagged.stderr

    again = new_run(server, 2)
    untagged = work(server, again, ["-j", "2", "--no-tag"], command)
    assert sorted(untagged.stdout.splitlines()) == ["out 0", "out 1"]
    one = work(server, new_run(server, 1), ["--tag"], command)
    assert one.stdout == "0\tout 0\n"
