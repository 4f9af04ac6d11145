"""What can be checked of the container files without a container engine: compose.yaml is
well formed and names what it should, and the Dockerfile's user is not root and its CMD and
HEALTHCHECK work when run as the image runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.live_server import free_port, server_env

ROOT = Path(__file__).resolve().parents[2]
STARTUP_SECONDS = 60


def _dockerfile() -> dict[str, list[str]]:
    """Each instruction's arguments, continuation lines joined, by instruction."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    instructions: dict[str, list[str]] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            keyword, _, arguments = line.strip().partition(" ")
            instructions.setdefault(keyword.upper(), []).append(arguments.strip())
    return instructions


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return document


def test_compose_runs_the_server_on_postgres_16_with_redis_optional(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"server", "postgres", "redis"}
    assert services["postgres"]["image"] == "postgres:16"
    assert "profiles" not in services["server"]
    assert "profiles" not in services["postgres"]
    assert services["redis"]["profiles"] == ["redis"]
    assert "postgres" in services["server"]["depends_on"]


def test_compose_keeps_data_in_named_volumes(compose: dict[str, Any]) -> None:
    volumes = compose["volumes"]
    for service in ("postgres", "redis"):
        (mount,) = compose["services"][service]["volumes"]
        assert mount.partition(":")[0] in volumes


def test_compose_requires_the_secrets_from_env(compose: dict[str, Any]) -> None:
    environment = compose["services"]["server"]["environment"]
    for name in ("DATABASE_URL", "TASKFARM_SECRET_KEY", "TASKFARM_ADMIN_PASSWORD"):
        assert environment[name].startswith("${" + name + ":?")


def test_the_server_runs_as_a_user_other_than_root(compose: dict[str, Any]) -> None:
    users = _dockerfile()["USER"]
    assert users
    assert users[-1].partition(":")[0] not in ("root", "0")
    assert str(compose["services"]["server"]["user"]).partition(":")[0] not in ("root", "0")


def test_the_image_exposes_the_default_port() -> None:
    assert _dockerfile()["EXPOSE"] == ["5000"]


@pytest.fixture
def image_server(tmp_path: Path) -> Iterator[int]:
    """The Dockerfile's CMD, run from this virtual environment on a loopback port."""
    (cmd,) = _dockerfile()["CMD"]
    command = json.loads(cmd)
    assert command == ["taskfarm", "serve", "--host", "0.0.0.0"]
    command[0] = str(Path(sys.executable).with_name("taskfarm"))
    command[command.index("0.0.0.0")] = "127.0.0.1"
    port = free_port()
    env = server_env(f"sqlite:///{tmp_path / 'taskfarm.db'}", PORT=str(port))
    log = tmp_path / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, env=env, cwd=tmp_path, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            _wait_for(f"http://127.0.0.1:{port}/healthz", process, log)
            yield port
        finally:
            process.terminate()
            process.wait(timeout=20)


def _wait_for(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"taskfarm serve exited:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"taskfarm serve did not answer in {STARTUP_SECONDS} s:\n{log.read_text()}")


@pytest.mark.slow
def test_the_image_command_serves_healthy_and_ready(image_server: int) -> None:
    for path, status in (("healthz", "ok"), ("readyz", "ready")):
        with urllib.request.urlopen(f"http://127.0.0.1:{image_server}/{path}") as response:
            assert response.status == 200
            assert json.load(response) == {"status": status}


@pytest.mark.slow
def test_the_image_healthcheck_passes_against_a_running_server(image_server: int) -> None:
    (healthcheck,) = _dockerfile()["HEALTHCHECK"]
    command = json.loads(healthcheck.partition("CMD ")[2])
    assert command[:2] == ["python", "-c"]
    command[0] = sys.executable
    env = server_env("unused", PORT=str(image_server))
    assert subprocess.run(command, env=env, timeout=30).returncode == 0
