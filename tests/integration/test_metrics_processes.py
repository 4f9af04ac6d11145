"""Metrics of several server processes: `taskfarm serve --workers 2` sums them at every scrape,
and the directory it counts in starts empty."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from taskfarm.config import SettingsError
from taskfarm.entrypoints.http.metrics import MULTIPROCESS_DIR, metrics_directory
from tests.integration.live_server import LiveServer, running_server

CLAIMS_AT_ONCE = 16
MOST_CLAIMS = 2_000
SCRAPES = 10
CLAIM_ROUTE = "/api/runs/{uuid}/task"


class Farm:
    """A run and a worker on a live server; every request on a connection of its own, so that
    the kernel hands them to either server process."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        token = requests.get(server.api + "token", auth=(server.user, server.password), timeout=30)
        self.auth = (token.json()["token"], "")
        worker = {"uuid": "w-1", "hostname": "node1", "pid": 1}
        requests.post(server.api + "worker", json=worker, auth=self.auth, timeout=30)
        run = requests.post(server.api + "run", json={"numTasks": 10**6}, auth=self.auth)
        self.run = run.json()["uuid"]

    def claim(self, _: object = None) -> int:
        response = requests.post(
            f"{self.server.api}runs/{self.run}/task",
            json={"worker_uuid": "w-1"},
            auth=self.auth,
            timeout=30,
        )
        assert response.status_code == 201, response.text
        return 1

    def claim_many(self, pool: ThreadPoolExecutor) -> int:
        return sum(pool.map(self.claim, range(CLAIMS_AT_ONCE)))

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        response = requests.get(self.server.url + "metrics", timeout=30)
        assert response.status_code == 200
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text)
            for sample in family.samples
        }

    def assert_every_scrape_counts(self, claimed: int) -> None:
        claim_requests = frozenset(
            {"method": "POST", "route": CLAIM_ROUTE, "status": "201"}.items()
        )
        computing = frozenset({"run": self.run, "state": "computing"}.items())
        for _ in range(SCRAPES):
            samples = self.scrape()
            assert samples[("taskfarm_tasks_claimed_total", frozenset())] == claimed
            assert samples[("taskfarm_http_request_duration_seconds_count", claim_requests)] == (
                claimed
            )
            # Read from the store by the process answering, once, not once per process.
            assert samples[("taskfarm_run_tasks", computing)] == claimed


def processes_that_claimed(directory: Path) -> set[str]:
    """The server processes whose files in `directory` count claims."""
    claimed = set()
    for values in directory.glob("counter_*.db"):
        # prometheus_client leaves it untyped.
        for metric in MultiProcessCollector.merge([str(values)]):  # type: ignore[no-untyped-call]
            if metric.name == "taskfarm_tasks_claimed" and any(s.value for s in metric.samples):
                claimed.add(values.stem.removeprefix("counter_"))
    return claimed


@pytest.mark.slow
def test_a_scrape_of_either_process_sums_the_claims_both_served(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    stale, unrelated = directory / "counter_1.db", directory / "notes.txt"
    stale.write_bytes(b"left by an earlier server")
    unrelated.write_text("not prometheus_client's")
    database_url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    env = {MULTIPROCESS_DIR: str(directory)}

    with running_server(database_url, tmp_path / "server.log", workers=2, env=env) as server:
        assert not stale.exists()
        assert unrelated.exists()
        farm, claimed = Farm(server), 0
        with ThreadPoolExecutor(CLAIMS_AT_ONCE) as pool:
            while len(processes_that_claimed(directory)) < 2:
                assert claimed < MOST_CLAIMS, "one server process took every connection"
                claimed += farm.claim_many(pool)
        farm.assert_every_scrape_counts(claimed)


@pytest.mark.slow
def test_serve_sums_its_processes_without_being_given_a_directory(tmp_path: Path) -> None:
    database_url = f"sqlite:///{tmp_path / 'taskfarm.db'}"
    with running_server(database_url, tmp_path / "server.log", workers=2) as server:
        farm = Farm(server)
        with ThreadPoolExecutor(CLAIMS_AT_ONCE) as pool:
            claimed = sum(farm.claim_many(pool) for _ in range(4))
        farm.assert_every_scrape_counts(claimed)


# The directory `taskfarm serve` counts in, before its server processes start


@pytest.fixture
def environ() -> MutableMapping[str, str]:
    return {}


def test_several_processes_count_in_a_temporary_directory_removed_afterwards(
    environ: MutableMapping[str, str],
) -> None:
    with metrics_directory(2, environ) as directory:
        assert directory is not None
        assert environ[MULTIPROCESS_DIR] == directory
        assert os.listdir(directory) == []
    assert MULTIPROCESS_DIR not in environ
    assert not Path(directory).exists()


def test_one_process_without_a_directory_counts_in_memory(
    environ: MutableMapping[str, str],
) -> None:
    with metrics_directory(1, environ) as directory:
        assert directory is None
        assert environ == {}


@pytest.mark.parametrize("workers", [1, 3])
def test_a_given_directory_is_made_or_emptied_of_earlier_values_only(
    environ: MutableMapping[str, str], tmp_path: Path, workers: int
) -> None:
    given = tmp_path / "made" / "metrics"
    environ[MULTIPROCESS_DIR] = str(given)
    with metrics_directory(workers, environ) as directory:
        assert directory == str(given)
        assert given.is_dir()
    earlier = ["counter_12.db", "gauge_livesum_12.db", "histogram_12.db", "summary_12.db"]
    for name in [*earlier, "taskfarm.db", "notes.txt"]:
        (given / name).write_text("")
    with metrics_directory(workers, environ):
        assert sorted(path.name for path in given.iterdir()) == ["notes.txt", "taskfarm.db"]
    assert environ[MULTIPROCESS_DIR] == str(given)
    assert given.is_dir()


def test_an_unusable_directory_is_a_settings_error(
    environ: MutableMapping[str, str], tmp_path: Path
) -> None:
    occupied = tmp_path / "a-file"
    occupied.write_text("")
    environ[MULTIPROCESS_DIR] = str(occupied)
    with pytest.raises(SettingsError, match=MULTIPROCESS_DIR), metrics_directory(2, environ):
        pass
