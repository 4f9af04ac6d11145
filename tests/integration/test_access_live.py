"""Owners and worker tokens as people and batch jobs meet them: `taskfarm` commands against a
real `taskfarm serve --workers 2`, on SQLite, PostgreSQL and Redis."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import attrs
import pytest
import requests

from tests.integration.live_server import (
    BACKEND_IDS,
    BACKEND_PARAMS,
    LiveServer,
    database_url,
    running_server,
)

pytestmark = pytest.mark.slow

TASKFARM = str(Path(sys.executable).with_name("taskfarm"))
PASSWORDS = {"ada": "analytical engine", "bob": "difference engine"}
#: Requests after a revocation, each on a connection of its own so that the kernel hands them
#: to both server processes.
REQUESTS_AFTER_REVOKING = 40


@attrs.frozen
class Farm:
    server: LiveServer
    database_url: str

    def env(self, login: Mapping[str, str]) -> dict[str, str]:
        """The environment of a command that logs in so, and no other way."""
        env = {key: value for key, value in os.environ.items() if not key.startswith("TASKFARM")}
        return {**env, "TASKFARM_URL": self.server.url, "DATABASE_URL": self.database_url, **login}

    def taskfarm(
        self, *arguments: str, login: Mapping[str, str], check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [TASKFARM, *arguments],
            env=self.env(login),
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert done.returncode == 0, done.stderr
        return done


def as_user(name: str) -> dict[str, str]:
    return {"TASKFARM_USER": name, "TASKFARM_PASSWORD": PASSWORDS[name]}


def as_token(token: str) -> dict[str, str]:
    return {"TASKFARM_TOKEN": token}


@pytest.fixture(scope="module", params=BACKEND_PARAMS, ids=BACKEND_IDS)
def farm(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Farm]:
    folder = tmp_path_factory.mktemp("access")
    url = database_url(request, folder)
    with running_server(url, folder / "server.log", workers=2) as server:
        farm = Farm(server, url)
        for name, password in PASSWORDS.items():
            farm.taskfarm("user", "add", name, "--password", password, login={})
        yield farm


@pytest.fixture
def run(farm: Farm) -> str:
    """A new run of ada's, of 6 tasks."""
    return farm.taskfarm("runs", "create", "6", login=as_user("ada")).stdout.strip()


def new_token(farm: Farm, run: str, *options: str) -> dict[str, object]:
    created = farm.taskfarm(
        "tokens", "create", "--run", run, "--json", *options, login=as_user("ada")
    )
    return dict(json.loads(created.stdout))


def test_users_see_only_their_own_runs_and_admins_every_run(farm: Farm, run: str) -> None:
    bobs = farm.taskfarm("runs", "create", "2", login=as_user("bob")).stdout.strip()
    admin = {"TASKFARM_USER": farm.server.user, "TASKFARM_PASSWORD": farm.server.password}

    def listed(login: Mapping[str, str]) -> set[str]:
        runs = json.loads(farm.taskfarm("runs", "list", "--json", login=login).stdout)
        return {listed["uuid"] for listed in runs}

    assert run in listed(as_user("ada"))
    assert bobs not in listed(as_user("ada"))
    assert run not in listed(as_user("bob"))
    assert bobs in listed(as_user("bob"))
    assert {run, bobs} <= listed(admin)

    refused = farm.taskfarm("runs", "info", run, login=as_user("bob"), check=False)
    assert refused.returncode != 0
    assert f"no run with uuid '{run}'" in refused.stderr
    assert "HTTP 404" in refused.stderr
    shown = farm.taskfarm("runs", "info", run, login=admin).stdout
    assert any(line.split() == ["owner", "ada"] for line in shown.splitlines())


def test_a_worker_token_finishes_its_run_with_taskfarm_work_and_nothing_else(
    farm: Farm, run: str, tmp_path: Path
) -> None:
    other = farm.taskfarm("runs", "create", "2", login=as_user("ada")).stdout.strip()
    token = new_token(farm, run, "--name", "array-job", "--expires", "7d")
    batch_job = as_token(str(token["token"]))
    touch = "import sys; open(sys.argv[1] + '/' + sys.argv[2], 'x')"

    command = [sys.executable, "-c", touch, str(tmp_path), "{}"]
    worked = farm.taskfarm("work", run, "-j", "2", "--", *command, login=batch_job)

    assert sorted(int(path.name) for path in tmp_path.iterdir()) == list(range(6)), worked.stderr
    info = json.loads(farm.taskfarm("runs", "info", run, "--json", login=batch_job).stdout)
    assert (info["numDone"], info["owner"]) == (6, "ada")

    for command, lacking in [
        (["runs", "delete", run], "'manage' scope"),
        (["runs", "create", "3"], "'manage' scope"),
        (["runs", "reset", run], "'manage' scope"),
        (["tokens", "create", "--run", run], "'tokens' scope"),
        (["work", other, "--", "true"], f"not on {other}"),
    ]:
        refused = farm.taskfarm(*command, login=batch_job, check=False)
        assert refused.returncode != 0
        assert lacking in refused.stderr, refused.stderr
        assert "HTTP 403" in refused.stderr
    remaining = json.loads(farm.taskfarm("runs", "list", "--json", login=as_user("ada")).stdout)
    assert {listed["uuid"] for listed in remaining} >= {run, other}


def test_tokens_are_listed_for_their_owner(farm: Farm, run: str) -> None:
    token = new_token(farm, run, "--name", "listed", "--expires", "1h")

    listed = json.loads(farm.taskfarm("tokens", "list", "--json", login=as_user("ada")).stdout)
    [mine] = [entry for entry in listed if entry["id"] == token["id"]]
    assert (mine["name"], mine["run"]) == ("listed", run)
    assert mine["expires"] is not None
    assert "token" not in mine
    theirs = json.loads(farm.taskfarm("tokens", "list", "--json", login=as_user("bob")).stdout)
    assert token["id"] not in {entry["id"] for entry in theirs}


def test_a_revoked_token_is_refused_by_every_server_process_within_a_second(
    farm: Farm, run: str
) -> None:
    token = new_token(farm, run)
    auth = (str(token["token"]), "")
    info = f"{farm.server.api}runs/{run}"

    def status(_: object = None) -> int:
        # A connection of its own each time: either server process may answer.
        return requests.get(info, auth=auth, timeout=30).status_code

    revoking = threading.Event()

    def in_use() -> list[int]:
        # Until the revocation, both processes recall the token, as in the middle of a run.
        seen = []
        while not revoking.is_set():
            seen.append(status())
        return seen

    with ThreadPoolExecutor(8) as pool:
        users = [pool.submit(in_use) for _ in range(4)]
        time.sleep(0.5)
        farm.taskfarm("tokens", "revoke", str(token["id"]), login=as_user("ada"))
        revoked = time.monotonic()
        revoking.set()
        assert 200 in {code for user in users for code in user.result()}
        time.sleep(max(0.0, revoked + 1.0 - time.monotonic()))
        assert set(pool.map(status, range(REQUESTS_AFTER_REVOKING))) == {401}

    refused = farm.taskfarm("runs", "info", run, login=as_token(auth[0]), check=False)
    assert "revoked" in refused.stderr
    assert "HTTP 401" in refused.stderr


def test_without_a_user_or_token_a_command_says_how_to_log_in(farm: Farm) -> None:
    refused = farm.taskfarm("runs", "list", login={}, check=False)
    assert refused.returncode == 2
    assert "TASKFARM_TOKEN" in refused.stderr
