"""Prometheus metrics at /metrics, through Starlette's TestClient on a memory store."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator, Sequence

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.memory.run_store import MemoryRunStore
from taskfarm.bootstrap import Services, bootstrap
from taskfarm.config import Settings
from taskfarm.domain import Run, StorageError
from taskfarm.entrypoints.http import create_app
from tests.fakes import FakeClock, FakeHasher

USER, PASSWORD = "alice", "wonderland"
WORKER = "w-1"
STATES = ("waiting", "computing", "done", "failed")

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


class FailingRunStore(MemoryRunStore):
    """A run store whose database can be taken away and given back."""

    down = False

    def list_runs(self, owner: str | None = None) -> Sequence[Run]:
        if self.down:
            raise StorageError("the database does not answer: connection refused")
        return super().list_runs(owner)


@pytest.fixture
def storage() -> MemoryStorage:
    storage = MemoryStorage()
    storage.runs = FailingRunStore(threading.Lock())
    return storage


@pytest.fixture
def services(storage: MemoryStorage, clock: FakeClock) -> Services:
    services = bootstrap(
        Settings(database_url="memory://"), storage=storage, clock=clock, hasher=FakeHasher()
    )
    services.accounts.add_user(USER, PASSWORD)
    return services


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services, sweep_seconds=0.01)) as client:
        client.auth = (USER, PASSWORD)
        client.post("/api/worker", json={"uuid": WORKER, "hostname": "node1", "pid": 42})
        yield client


def scrape(client: TestClient) -> Samples:
    response = client.get("/metrics", auth=None)
    assert response.status_code == 200
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def new_run(client: TestClient, num_tasks: int, **policy: int) -> str:
    return str(client.post("/api/run", json={"numTasks": num_tasks, **policy}).json()["uuid"])


def claim(client: TestClient, run: str) -> int:
    return client.post(f"/api/runs/{run}/task", json={"worker_uuid": WORKER}).status_code


def test_metrics_are_public_text_with_help_for_every_taskfarm_metric(client: TestClient) -> None:
    response = client.get("/metrics", auth=None)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    families = {family.name: family for family in text_string_to_metric_families(response.text)}
    expected = {
        "taskfarm_tasks_claimed",
        "taskfarm_empty_claims",
        "taskfarm_task_updates",
        "taskfarm_leases_expired",
        "taskfarm_attempts_failed",
        "taskfarm_database_up",
        "taskfarm_run_tasks",
        "taskfarm_run_percent_done",
    }
    assert expected <= set(families)
    assert all(families[name].documentation for name in expected)


def test_claims_count_the_tasks_handed_out_and_the_claims_that_found_none(
    client: TestClient,
) -> None:
    run = new_run(client, 5)
    assert [claim(client, run), claim(client, run)] == [201, 201]
    batch = client.post(f"/api/runs/{run}/tasks/claim", json={"worker_uuid": WORKER, "count": 9})
    assert len(batch.json()["tasks"]) == 3
    assert claim(client, run) == 204
    empty = client.post(f"/api/runs/{run}/tasks/claim", json={"worker_uuid": WORKER, "count": 2})
    assert empty.status_code == 204
    assert claim(client, "no-such-run") == 404

    samples = scrape(client)
    assert value(samples, "taskfarm_tasks_claimed_total") == 5
    assert value(samples, "taskfarm_empty_claims_total") == 2


def test_updates_count_by_the_status_they_set_or_as_progress(client: TestClient) -> None:
    run = new_run(client, 3)
    for _ in range(3):
        claim(client, run)
    updates = [
        (0, {"percentCompleted": 10}),
        (0, {"percentCompleted": 50}),
        (0, {"percentCompleted": 100, "status": "done"}),
        (1, {"status": "waiting"}),
        (2, {"status": "failed"}),
    ]
    for index, body in updates:
        assert client.put(f"/api/runs/{run}/tasks/{index}", json=body).status_code == 204
    refused = client.put(f"/api/runs/{run}/tasks/2", json={"status": "finished"})
    assert refused.status_code == 400

    samples = scrape(client)
    counted = {
        change: value(samples, "taskfarm_task_updates_total", change=change)
        for change in ("progress", *STATES)
    }
    assert counted == {"progress": 2, "waiting": 1, "computing": 0, "done": 1, "failed": 1}
    assert value(samples, "taskfarm_attempts_failed_total") == 1


def test_request_durations_are_labelled_by_route_template_method_and_status(
    client: TestClient,
) -> None:
    run = new_run(client, 2)
    for _ in range(3):
        client.get(f"/api/runs/{run}")
    client.get("/api/runs/not-a-run")
    client.get(f"/api/runs/{run}", auth=None)
    client.get(f"/no/such/page/{run}")
    client.request("BREW", "/healthz")

    samples = scrape(client)
    duration = "taskfarm_http_request_duration_seconds"

    def count(method: str, route: str, status: str) -> float:
        return value(samples, duration + "_count", method=method, route=route, status=status)

    assert count("GET", "/api/runs/{uuid}", "200") == 3
    assert count("GET", "/api/runs/{uuid}", "404") == 1
    assert count("GET", "/api/{path}", "401") == 1  # refused before routing
    assert count("GET", "unmatched", "404") == 1
    assert count("other", "/healthz", "405") == 1
    routes = {dict(labels).get("route") for name, labels in samples if name.startswith(duration)}
    assert not any(run in str(route) for route in routes)
    found = {"method": "GET", "route": "/api/runs/{uuid}", "status": "200"}
    assert value(samples, duration + "_sum", **found) > 0
    assert value(samples, duration + "_bucket", le="+Inf", **found) == 3


def test_run_gauges_count_each_runs_tasks_by_state(client: TestClient) -> None:
    busy, fresh, gone = new_run(client, 4), new_run(client, 1_000_000_000), new_run(client, 1)
    for _ in range(3):
        claim(client, busy)
    client.put(f"/api/runs/{busy}/tasks/0", json={"percentCompleted": 100, "status": "done"})
    client.delete(f"/api/runs/{gone}")

    samples = scrape(client)

    def tasks(run: str) -> dict[str, float]:
        return {
            state: value(samples, "taskfarm_run_tasks", run=run, state=state) for state in STATES
        }

    assert tasks(busy) == {"waiting": 1, "computing": 2, "done": 1, "failed": 0}
    assert tasks(fresh) == {"waiting": 1_000_000_000, "computing": 0, "done": 0, "failed": 0}
    assert value(samples, "taskfarm_run_percent_done", run=busy) == 25
    assert not any(dict(labels).get("run") == gone for _, labels in samples)
    assert value(samples, "taskfarm_database_up") == 1


def test_expired_leases_are_counted_by_the_sweep(client: TestClient, clock: FakeClock) -> None:
    run = new_run(client, 3, leaseSeconds=60, maxAttempts=1)
    claim(client, run)
    claim(client, run)
    clock.advance(dt.timedelta(seconds=61))

    deadline = time.monotonic() + 10
    while value(scrape(client), "taskfarm_leases_expired_total") < 2:
        assert time.monotonic() < deadline, "the sweep did not count the expired leases"
        time.sleep(0.02)
    samples = scrape(client)
    assert value(samples, "taskfarm_leases_expired_total") == 2
    assert value(samples, "taskfarm_run_tasks", run=run, state="failed") == 2


def test_a_database_down_at_scrape_time_leaves_out_the_runs_and_is_logged_once(
    client: TestClient, storage: MemoryStorage, caplog: pytest.LogCaptureFixture
) -> None:
    run = new_run(client, 2)
    claim(client, run)
    runs = storage.runs
    assert isinstance(runs, FailingRunStore)
    runs.down = True
    with caplog.at_level(logging.INFO, logger="taskfarm"):
        during = [scrape(client), scrape(client)]
        runs.down = False
        after = scrape(client)

    for samples in during:
        assert value(samples, "taskfarm_database_up") == 0
        assert value(samples, "taskfarm_tasks_claimed_total") == 1
        assert not any(name == "taskfarm_run_tasks" for name, _ in samples)
    assert value(after, "taskfarm_database_up") == 1
    assert value(after, "taskfarm_run_tasks", run=run, state="computing") == 1
    outages = [r for r in caplog.records if r.levelno == logging.WARNING and "metrics" in r.name]
    assert len(outages) == 1
    assert "connection refused" in outages[0].getMessage()


def test_two_applications_in_one_process_count_apart(services: Services) -> None:
    with TestClient(create_app(services)) as first, TestClient(create_app(services)) as second:
        first.auth = second.auth = (USER, PASSWORD)
        first.post("/api/worker", json={"uuid": WORKER, "hostname": "node1", "pid": 42})
        run = new_run(first, 3)
        claim(first, run)
        claim(first, run)
        claim(second, run)
        assert value(scrape(first), "taskfarm_tasks_claimed_total") == 2
        assert value(scrape(second), "taskfarm_tasks_claimed_total") == 1
