"""Failures seen and retried end to end, on every backend a server can share: `taskfarm work`
reports why a command failed, `taskfarm runs failed` shows it, `taskfarm runs retry` puts
the failed tasks back, and a second worker finishes them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import SHARED_BACKENDS, StorageFactory
from tests.integration.live_server import LiveServer, running_server

pytestmark = pytest.mark.slow

TASKFARM = str(Path(sys.executable).with_name("taskfarm"))
#: The indices that fail, with exit status 7 and a line on their error output, unless the
#: command is told none do.
FAILING = [3, 7, 11, 19, 20, 28, 33, 39]
FLAKY = f"""
import sys
task, failing = int(sys.argv[1]), sys.argv[2]
print("working on", task)
if failing == "some" and task in {FAILING}:
    print("warming up", file=sys.stderr)
    print(f"task {{task}}: cannot open 'input {{task}}.h5'", file=sys.stderr)
    sys.exit(7)
"""


@pytest.fixture
def server(storage_factory: StorageFactory, tmp_path: Path) -> Iterator[LiveServer]:
    assert storage_factory.url is not None
    with running_server(storage_factory.url, tmp_path / "server.log") as live:
        yield live


def taskfarm(server: LiveServer, *arguments: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "TASKFARM_URL": server.url,
        "TASKFARM_USER": server.user,
        "TASKFARM_PASSWORD": server.password,
    }
    return subprocess.run(
        [TASKFARM, *arguments], env=env, capture_output=True, text=True, timeout=120
    )


def work(server: LiveServer, run: str, failing: str, *options: str) -> int:
    done = taskfarm(
        server, "work", run, "-j", "4", *options, "--", sys.executable, "-c", FLAKY, "{}", failing
    )
    return done.returncode


@pytest.mark.parametrize("storage_factory", SHARED_BACKENDS, indirect=True)
def test_failed_tasks_are_listed_with_their_error_and_retried_until_every_one_is_done(
    server: LiveServer, tmp_path: Path
) -> None:
    run = taskfarm(server, "runs", "create", "40", "--max-attempts", "1").stdout.strip()

    assert work(server, run, "some", "--results", str(tmp_path / "results")) == 1

    failed = json.loads(taskfarm(server, "runs", "failed", run, "--json").stdout)
    assert [record["index"] for record in failed] == FAILING
    for record in failed:
        assert (record["exitCode"], record["attempts"], record["outcome"]) == (7, 1, "failed")
        assert record["error"] == (
            f"warming up\ntask {record['index']}: cannot open 'input {record['index']}.h5'\n"
        )
        assert record["worker"]
        assert record["hostname"]
        assert record["started"] <= record["ended"]
    table = taskfarm(server, "runs", "failed", run).stdout.splitlines()
    assert table[0].split() == ["TASK", "ATTEMPTS", "EXIT", "HOST", "LAST", "ERROR", "LINE"]
    assert table[1].split()[:3] == ["3", "1", "7"]
    assert table[1].endswith("task 3: cannot open 'input 3.h5'")
    info = taskfarm(server, "runs", "info", run, "--json").stdout
    assert (json.loads(info)["numFailed"], json.loads(info)["numDone"]) == (8, 32)
    results = tmp_path / "results"
    assert (results / "3.err").read_text().endswith("cannot open 'input 3.h5'\n")
    assert (results / "4.out").read_text() == "working on 4\n"
    assert (results / "4.err").read_text() == ""

    retried = taskfarm(server, "runs", "retry", run, "--failed")
    assert retried.stdout.strip() == f"Retried 8 tasks of run {run}."

    assert work(server, run, "none") == 0
    finished = json.loads(taskfarm(server, "runs", "info", run, "--json").stdout)
    assert (finished["numDone"], finished["numFailed"], finished["percentDone"]) == (40, 0, 100)
    assert json.loads(taskfarm(server, "runs", "failed", run, "--json").stdout) == []
