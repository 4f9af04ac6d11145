"""The dashboard through Starlette's TestClient: who may see it, what it shows, how it fails."""

from __future__ import annotations

import datetime as dt
import html as html_module
import re
from collections.abc import Iterator
from typing import cast

import attrs
import pytest
from starlette.testclient import TestClient

from taskfarm import __version__
from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import Services, bootstrap
from taskfarm.config import Settings
from taskfarm.domain import (
    FULL_PROGRESS,
    Run,
    StorageError,
    TaskChange,
    TaskState,
    WorkerRegistration,
)
from taskfarm.entrypoints.http import create_app
from taskfarm.entrypoints.http.routes.pages import LISTED
from taskfarm.ports import RunStore
from tests.fakes import FakeClock, FakeHasher

USER, PASSWORD = "alice", "wonderland"
DONE = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)
FAILED = TaskChange(state=TaskState.FAILED)
COMMAND_FAILED = TaskChange(
    state=TaskState.FAILED, exit_code=3, error="reading input\nValueError: <no> such file\n"
)
WAITING = TaskChange(state=TaskState.WAITING)
CHALLENGE = 'Basic realm="taskfarm"'


@pytest.fixture
def services(clock: FakeClock) -> Iterator[Services]:
    services = bootstrap(
        Settings(database_url="memory://"),
        storage=MemoryStorage(),
        clock=clock,
        hasher=FakeHasher(),
    )
    # An admin, who sees every run: the runs here are made without an owner.
    services.accounts.add_user(USER, PASSWORD, admin=True)
    yield services
    services.close()


@pytest.fixture
def browser(services: Services) -> Iterator[TestClient]:
    """A browser that has not signed in."""
    with TestClient(create_app(services)) as client:
        yield client


@pytest.fixture
def signed_in(browser: TestClient) -> TestClient:
    browser.auth = (USER, PASSWORD)
    return browser


@pytest.fixture
def run(services: Services) -> Run:
    """A run of 200 tasks, one attempt each: 80 done, 18 computing for a registered worker, 1
    failed with an exit status and an error, 1 handed back, the rest untouched."""
    farm = services.taskfarm
    farm.register_worker(WorkerRegistration("worker-a", "node17", 4242))
    run = farm.create_run(200, lease_seconds=600, max_attempts=1)
    farm.claim_tasks(run.uuid, "worker-a", 100)
    for index in range(80):
        farm.update_task(run.uuid, index, DONE)
    farm.update_task(run.uuid, 80, COMMAND_FAILED, "worker-a")
    farm.update_task(run.uuid, 81, WAITING)
    return run


def first(pattern: str, html: str) -> str:
    found = re.search(pattern, html, re.DOTALL)
    assert found is not None, f"nothing matches {pattern!r}"
    return found[0]


def text(html: str) -> str:
    """What a person reads: the page without its tags, style and spacing."""
    html = re.sub(r"<style>.*?</style>", " ", html, flags=re.DOTALL)
    return " ".join(html_module.unescape(re.sub(r"<[^>]+>", " ", html)).split())


# Who sees what


def test_without_credentials_the_front_page_says_what_the_server_is_and_nothing_more(
    browser: TestClient, run: Run
) -> None:
    response = browser.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "www-authenticate" not in response.headers
    assert f"taskfarm {__version__}" in text(response.text)
    assert 'href="/dashboard"' in response.text
    assert run.uuid not in response.text
    assert "node17" not in response.text


def test_wrong_credentials_on_the_front_page_say_so_and_show_no_run(
    browser: TestClient, run: Run
) -> None:
    response = browser.get("/", auth=(USER, "not the password"))
    assert response.status_code == 200
    assert "were not accepted" in text(response.text)
    assert 'href="/dashboard"' in response.text
    assert run.uuid not in response.text


@pytest.mark.parametrize("path", ["/dashboard", "/dashboard/runs/{uuid}"])
@pytest.mark.parametrize("auth", [None, (USER, "not the password"), ("bob", PASSWORD)])
def test_the_dashboard_asks_the_browser_to_sign_in_and_shows_nothing_until_then(
    browser: TestClient, run: Run, path: str, auth: tuple[str, str] | None
) -> None:
    response = browser.get(path.format(uuid=run.uuid), auth=auth)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == CHALLENGE
    assert response.headers["content-type"].startswith("text/html")
    assert "Sign in" in text(response.text)
    assert run.uuid not in response.text
    assert "node17" not in response.text


def test_signed_in_the_front_page_is_the_dashboard(signed_in: TestClient, run: Run) -> None:
    front, dashboard = signed_in.get("/"), signed_in.get("/dashboard")
    assert front.status_code == dashboard.status_code == 200
    assert run.uuid in front.text
    assert text(front.text) == text(dashboard.text)
    assert f"signed in as {USER}" in text(front.text)


def test_a_token_signs_in_too(signed_in: TestClient, run: Run) -> None:
    token = signed_in.get("/api/token").json()["token"]
    response = signed_in.get("/dashboard", auth=(token, ""))
    assert response.status_code == 200
    assert run.uuid in response.text


# The overview


def test_the_overview_shows_each_run_with_its_progress_and_tasks_by_state(
    signed_in: TestClient, run: Run
) -> None:
    page = signed_in.get("/dashboard").text
    row = text(first(rf'<tr id="run-{run.uuid}">.*?</tr>', page))
    # uuid, tasks, percent, waiting, computing, done, failed, throughput, time left
    assert row == f"{run.uuid} 200 tasks 40.0 % 101 18 80 1 measuring… measuring…"
    assert f'href="/dashboard/runs/{run.uuid}"' in page
    assert 'aria-valuenow="40.0"' in page
    assert 'style="width: 40.000%"' in page


def test_throughput_and_time_left_are_measured_between_looks(
    signed_in: TestClient, services: Services, clock: FakeClock, run: Run
) -> None:
    signed_in.get("/dashboard")
    clock.advance(dt.timedelta(seconds=30))
    for index in range(82, 97):
        services.taskfarm.update_task(run.uuid, index, DONE)
    row = text(signed_in.get("/dashboard").text)
    # 15 tasks in 30 s; 200 - 95 done - 1 failed = 104 left, at half a task a second
    assert "30 tasks/min 3 min 28 s" in row


def test_a_finished_run_reads_finished(signed_in: TestClient, services: Services) -> None:
    run = services.taskfarm.create_run(2)
    for index in range(2):
        services.taskfarm.update_task(run.uuid, index, DONE)
    assert "100.0 % 0 0 2 0 measuring… finished" in text(signed_in.get("/dashboard").text)


def test_with_no_run_the_overview_says_how_to_make_one(signed_in: TestClient) -> None:
    page = text(signed_in.get("/dashboard").text)
    assert "There are no runs yet" in page


@pytest.mark.parametrize("path", ["/", "/dashboard", "/dashboard/runs/{uuid}"])
def test_the_dashboard_refreshes_itself_without_javascript(
    signed_in: TestClient, run: Run, path: str
) -> None:
    page = signed_in.get(path.format(uuid=run.uuid)).text
    assert '<meta http-equiv="refresh" content="10">' in page
    assert "<script" not in page
    assert "http://" not in page  # no external asset
    assert "https://" not in page


def test_the_public_page_does_not_refresh(browser: TestClient) -> None:
    assert 'http-equiv="refresh"' not in browser.get("/").text


# One run


def test_a_run_page_shows_its_numbers_workers_failed_and_requeued_tasks(
    signed_in: TestClient, run: Run
) -> None:
    page = text(signed_in.get(f"/dashboard/runs/{run.uuid}").text)
    assert f"Run {run.uuid}" in page
    assert "40.0 % Tasks 200 Created " in page
    assert " Throughput measuring… Time left measuring…" in page
    assert "Lease 600 s Attempts per task at most 1" in page
    assert "Waiting Computing Done Failed 101 18 80 1" in page
    assert "1 worker, busiest first" in page
    assert "worker-a node17 4242 18 2025-01-01 00:00:00 UTC" in page
    assert (
        "1 failed task, by index Task Attempts Exit Host Ended Error "
        "80 1 3 node17 2025-01-01 00:00:00 UTC ValueError: <no> such file "
        "reading input ValueError: <no> such file"
    ) in page
    assert "Retry 1 failed task" in page
    # Handed back, it gave its attempt back.
    assert "1 requeued task, by index Task Progress Attempts 81 0.0 % 0" in page


def test_a_quiet_run_page_says_nobody_computes_and_nothing_failed_or_came_back(
    signed_in: TestClient, services: Services
) -> None:
    run = services.taskfarm.create_run(10**9)
    page = text(signed_in.get(f"/dashboard/runs/{run.uuid}").text)
    assert "1,000,000,000" in page
    assert "Lease none" in page
    assert "Attempts per task no limit" in page
    assert "No worker is computing any of its tasks." in page
    assert "No task has failed." in page
    assert "No task is waiting to be handed out again." in page


def test_long_lists_are_cut_and_say_so(signed_in: TestClient, services: Services) -> None:
    farm = services.taskfarm
    run = farm.create_run(1000)
    for index in range(LISTED + 20):
        farm.update_task(run.uuid, index, FAILED)
    for index in range(300, 300 + 2 * LISTED + 10):
        farm.update_task(run.uuid, index, WAITING)
    for number in range(LISTED + 1):  # these claims take the first 102 requeued tasks
        farm.register_worker(WorkerRegistration(f"worker-{number:03}", "node", number))
        farm.claim_tasks(run.uuid, f"worker-{number:03}", 2 if number == LISTED else 1)

    page = signed_in.get(f"/dashboard/runs/{run.uuid}").text

    assert f"The {LISTED} busiest workers, busiest first" in text(page)
    holders = first(r'<h2 id="workers">.*?</table>', page)
    assert holders.index(f"worker-{LISTED:03}") < holders.index("worker-000")
    assert "worker-099" not in holders
    assert f"{LISTED + 20} failed tasks; these {LISTED} by index" in text(page)
    assert first(r'<h2 id="failed">.*?</table>', page).count("<tr>") == LISTED + 1  # and the head
    assert f'href="?failed_after={LISTED - 1}#failed"' in page
    rest = text(signed_in.get(f"/dashboard/runs/{run.uuid}?failed_after={LISTED - 1}").text)
    assert f"these 20 by index, after task {LISTED - 1}" in rest
    assert "Next failed tasks" not in rest
    assert f"The first {LISTED} requeued tasks, by index; more are waiting" in text(page)
    requeued = text(first(r'<h2 id="requeued">.*?</table>', page))
    assert "Attempts 402 0.0 % 0 403 0.0 % 0" in requeued


def form_token(page: str) -> str:
    return first(r'name="form_token" value="[^"]*"', page).split('value="')[1][:-1]


def test_the_retry_button_puts_the_failed_tasks_back_and_says_how_many(
    signed_in: TestClient, run: Run, services: Services
) -> None:
    page = signed_in.get(f"/dashboard/runs/{run.uuid}").text

    response = signed_in.post(
        f"/dashboard/runs/{run.uuid}/retry",
        data={"form_token": form_token(page)},
        follow_redirects=False,
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/dashboard/runs/{run.uuid}?retried=1#failed"
    after = text(signed_in.get(response.headers["location"]).text)
    assert "Retried 1 task: it waits to be handed out again." in after
    assert "No task has failed." in after
    assert services.taskfarm.get_run(run.uuid).num_failed == 0


@pytest.mark.parametrize("token", [None, "", "forged", "é"])
def test_a_retry_without_the_page_token_is_refused_and_changes_nothing(
    signed_in: TestClient, run: Run, services: Services, token: str | None
) -> None:
    data = {} if token is None else {"form_token": token}

    response = signed_in.post(f"/dashboard/runs/{run.uuid}/retry", data=data)

    assert response.status_code == 403
    assert "Nothing was retried" in text(response.text)
    assert services.taskfarm.get_run(run.uuid).num_failed == 1


def test_a_retry_needs_a_signed_in_user(browser: TestClient, run: Run) -> None:
    response = browser.post(f"/dashboard/runs/{run.uuid}/retry", data={"form_token": "x"})

    assert response.status_code == 401


def test_another_users_page_token_is_not_this_users(
    signed_in: TestClient, run: Run, services: Services
) -> None:
    services.accounts.add_user("mallory", "guessed it")
    theirs = services.accounts.form_token(services.accounts.authenticate("mallory", "guessed it"))

    response = signed_in.post(f"/dashboard/runs/{run.uuid}/retry", data={"form_token": theirs})

    assert response.status_code == 403


def test_an_unknown_run_is_a_page_saying_so(signed_in: TestClient) -> None:
    response = signed_in.get("/dashboard/runs/nope")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "There is no run 'nope' on this server" in text(response.text)
    assert 'href="/dashboard"' in response.text


def test_whatever_workers_and_urls_say_is_shown_as_text_never_as_markup(
    signed_in: TestClient, services: Services
) -> None:
    farm = services.taskfarm
    run = farm.create_run(3)
    farm.register_worker(WorkerRegistration("<i>w</i>", "<script>alert(1)</script>", 1))
    farm.claim_tasks(run.uuid, "<i>w</i>")

    page = signed_in.get(f"/dashboard/runs/{run.uuid}").text
    missing = signed_in.get("/dashboard/runs/<img src=x onerror=alert(1)>").text

    assert "<script>alert" not in page
    assert "<i>w</i>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;i&gt;w&lt;/i&gt;" in page
    assert "<img" not in missing
    assert "&lt;img src=x onerror=alert(1)&gt;" in missing


# When the database is away


class UnavailableRuns:
    """A run store whose database is away."""

    def __getattr__(self, name: str) -> object:
        def fail(*args: object, **kwargs: object) -> object:
            raise StorageError("the database went away")

        return fail


def test_a_database_outage_is_a_page_that_tries_again(services: Services, run: Run) -> None:
    runs = cast(RunStore, UnavailableRuns())
    away = attrs.evolve(services, taskfarm=attrs.evolve(services.taskfarm, runs=runs))
    with TestClient(create_app(away)) as signed_in:
        signed_in.auth = (USER, PASSWORD)
        for path in ("/", "/dashboard", f"/dashboard/runs/{run.uuid}"):
            response = signed_in.get(path)
            assert response.status_code == 503
            assert "The database is unavailable" in text(response.text)
            assert '<meta http-equiv="refresh" content="10">' in response.text
