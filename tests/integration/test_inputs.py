"""Runs over inputs end to end, on every backend a server can share: a file of lines, a
parameter sweep and a JSON list, each task's input reaching its command as one argument,
exactly once, never through a shell."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import SHARED_BACKENDS, StorageFactory
from tests.integration.live_server import LiveServer, running_server

pytestmark = pytest.mark.slow

TASKFARM = str(Path(sys.executable).with_name("taskfarm"))
#: Prints its arguments, one JSON list a line: what the command was given, exactly.
ECHO = "import json, sys; print(json.dumps(sys.argv[1:]))"
HOSTILE = '\'; rm -rf x; $(touch pwned) `touch pwned` "quoted" ünïcødé'


@pytest.fixture
def server(storage_factory: StorageFactory, tmp_path: Path) -> Iterator[LiveServer]:
    assert storage_factory.url is not None
    with running_server(storage_factory.url, tmp_path / "server.log") as live:
        yield live


def taskfarm(
    server: LiveServer, *arguments: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TASKFARM_URL": server.url,
        "TASKFARM_USER": server.user,
        "TASKFARM_PASSWORD": server.password,
    }
    done = subprocess.run(
        [TASKFARM, *arguments], env=env, capture_output=True, text=True, timeout=120, cwd=cwd
    )
    assert done.returncode == 0, done.stderr
    return done


def given(server: LiveServer, run: str, *command: str, cwd: Path) -> list[list[str]]:
    """The arguments each command of the run was given, by two workers of two jobs each."""
    workers = [
        subprocess.Popen(
            [
                TASKFARM,
                "work",
                run,
                "-j",
                "2",
                "--no-tag",
                "--",
                sys.executable,
                "-c",
                ECHO,
                *command,
            ],
            env={
                **os.environ,
                "TASKFARM_URL": server.url,
                "TASKFARM_USER": server.user,
                "TASKFARM_PASSWORD": server.password,
            },
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate(timeout=120)[0] for worker in workers]
    assert [worker.returncode for worker in workers] == [0, 0]
    return sorted(json.loads(line) for output in outputs for line in output.splitlines())


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_each_input_reaches_its_command_once_as_one_literal_argument(
    server: LiveServer, tmp_path: Path
) -> None:
    lines = tmp_path / "inputs.txt"
    lines.write_text(f"first line\n\n  second, with spaces  \n{HOSTILE}\n", encoding="utf-8")
    run = taskfarm(server, "runs", "create", "--each-line", str(lines)).stdout.strip()

    assert given(server, run, "{}", "{#}", cwd=tmp_path) == [
        ["  second, with spaces  ", "1"],
        [HOSTILE, "2"],
        ["first line", "0"],
    ]
    assert not (tmp_path / "pwned").exists()
    info = json.loads(taskfarm(server, "runs", "info", run, "--json").stdout)
    assert (info["numTasks"], info["numDone"], info["inputs"]) == (3, 3, "lines")


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_a_sweep_runs_every_combination_once(server: LiveServer, tmp_path: Path) -> None:
    run = taskfarm(
        server, "runs", "create", "--sweep", "a=1,2,3", "--sweep", "b=x,y", "--name", "grid"
    ).stdout.strip()

    assert given(server, "grid", "{a}", "{b}", cwd=tmp_path) == sorted(
        [a, b] for a in "123" for b in "xy"
    )
    task = requests.get(f"{server.api}runs/{run}/tasks/5", auth=(server.user, server.password))
    assert task.json()["input"] == {"a": "3", "b": "y"}


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_a_json_list_gives_each_task_its_element(server: LiveServer, tmp_path: Path) -> None:
    elements = [{"path": "data/run 1.h5", "seed": 7}, "plain", 42, [1, "two"]]
    (tmp_path / "inputs.json").write_text(json.dumps(elements))
    run = taskfarm(server, "runs", "create", "--from-json", "inputs.json", cwd=tmp_path)

    assert given(server, run.stdout.strip(), "{}", "{path}", "{/.}", cwd=tmp_path) == sorted(
        [
            ['{"path":"data/run 1.h5","seed":7}', "data/run 1.h5", "run 1"],
            ["plain", "{path}", "plain"],
            ["42", "{path}", "42"],
            ['[1,"two"]', "{path}", '[1,"two"]'],
        ]
    )
