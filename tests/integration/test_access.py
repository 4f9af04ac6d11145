"""Who may do what, through the API, on every backend: users reach their own runs only, admins
every run, worker tokens the tasks of one run; guessing passwords is stopped before the KDF.
`test_access_live.py` does the same with `taskfarm` commands against real server processes."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from starlette.testclient import TestClient

from taskfarm.audit import AUDIT_FIELD, AUDIT_LOGGER, operator
from taskfarm.bootstrap import Services, bootstrap
from taskfarm.config import Settings
from taskfarm.domain import LOGIN_WINDOW, PER_ADDRESS, PER_USERNAME
from taskfarm.entrypoints.http import create_app
from taskfarm.ports import Storage
from taskfarm.run_owners import REMEMBERED_SECONDS
from tests.fakes import CountingHasher, FakeClock

PASSWORDS = {"ada": "analytical engine", "bob": "difference engine", "root": "babbage"}
MISSING = "00000000-0000-4000-8000-000000000000"

Request = Callable[["Login", str], Any]

#: Every route of one run or its tasks, as a request about the run `run`.
RUN_ROUTES: dict[str, Request] = {
    "run info": lambda c, run: c.get(f"/api/runs/{run}"),
    "one item": lambda c, run: c.get(f"/api/runs/{run}", params={"info": "numTasks"}),
    "delete": lambda c, run: c.delete(f"/api/runs/{run}"),
    "restart": lambda c, run: c.post(f"/api/runs/{run}/restart", params={"all": "true"}),
    "retry": lambda c, run: c.post(f"/api/runs/{run}/retry", json={"status": "failed"}),
    "list tasks": lambda c, run: c.get(f"/api/runs/{run}/tasks", params={"status": "waiting"}),
    "claim": lambda c, run: c.post(f"/api/runs/{run}/task", json={"worker_uuid": "w"}),
    "claim many": lambda c, run: c.post(
        f"/api/runs/{run}/tasks/claim", json={"worker_uuid": "w", "count": 2}
    ),
    "task info": lambda c, run: c.get(f"/api/runs/{run}/tasks/0"),
    "update task": lambda c, run: c.put(f"/api/runs/{run}/tasks/0", json={"status": "done"}),
    "heartbeat": lambda c, run: c.post(
        f"/api/runs/{run}/tasks/0/heartbeat", json={"worker_uuid": "w"}
    ),
    "heartbeat of many": lambda c, run: c.post(
        f"/api/runs/{run}/tasks/heartbeat", json={"worker_uuid": "w", "tasks": [0]}
    ),
    "make token": lambda c, run: c.post("/api/tokens", json={"run": run}),
}


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def services(storage: Storage, clock: FakeClock, hasher: CountingHasher) -> Services:
    services = bootstrap(
        Settings(database_url="memory://"), storage=storage, clock=clock, hasher=hasher
    )
    services.accounts.add_user("ada", PASSWORDS["ada"])
    services.accounts.add_user("bob", PASSWORDS["bob"])
    services.accounts.add_user("root", PASSWORDS["root"], admin=True)
    return services


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    """The test's one client: one event loop for the whole test, as a server has."""
    with TestClient(create_app(services, close_on_shutdown=False)) as client:
        yield client


@attrs.define
class Login:
    """Requests with one login, through the test's client."""

    client: TestClient
    auth: tuple[str, str]

    def get(self, url: str, **arguments: Any) -> Any:
        return self.client.get(url, auth=self.auth, **arguments)

    def post(self, url: str, **arguments: Any) -> Any:
        return self.client.post(url, auth=self.auth, **arguments)

    def put(self, url: str, **arguments: Any) -> Any:
        return self.client.put(url, auth=self.auth, **arguments)

    def delete(self, url: str, **arguments: Any) -> Any:
        return self.client.delete(url, auth=self.auth, **arguments)


@pytest.fixture
def as_user(client: TestClient) -> Callable[[str], Login]:
    def login(username: str) -> Login:
        user = Login(client, (username, PASSWORDS[username]))
        worker = {"uuid": "w" if username == "ada" else f"w-{username}", "hostname": "n", "pid": 1}
        assert user.post("/api/worker", json=worker).status_code == 201
        return user

    return login


def new_run(client: Login, name: str | None = None, tasks: int = 3) -> str:
    body: dict[str, Any] = {"numTasks": tasks, **({"name": name} if name else {})}
    answer = client.post("/api/run", json=body)
    assert answer.status_code == 201, answer.text
    return str(answer.json()["uuid"])


def worker_token(client: Login, run: str, **fields: object) -> Login:
    """A client logged in with a new worker token for `run`, as a batch job would be."""
    answer = client.post("/api/tokens", json={"run": run, **fields})
    assert answer.status_code == 201, answer.text
    return Login(client.client, (answer.json()["token"], ""))


# Owners


@pytest.mark.parametrize("route", RUN_ROUTES, ids=list(RUN_ROUTES))
def test_another_users_run_answers_exactly_as_a_missing_one(
    as_user: Callable[[str], Login], route: str
) -> None:
    ada, bob = as_user("ada"), as_user("bob")
    run = new_run(ada, name="adas-run")
    before = ada.get(f"/api/runs/{run}").json()

    for named, missing_name in ((run, MISSING), ("adas-run", "no-such-run")):
        answer = RUN_ROUTES[route](bob, named)
        missing = RUN_ROUTES[route](bob, missing_name)
        assert answer.status_code == missing.status_code == 404
        assert answer.json()["detail"] == missing.json()["detail"].replace(missing_name, named)

    assert ada.get(f"/api/runs/{run}").json() == before


def test_runs_and_workers_are_listed_for_their_owner_and_all_for_an_admin(
    as_user: Callable[[str], Login],
) -> None:
    ada, bob, root = as_user("ada"), as_user("bob"), as_user("root")
    adas, bobs = new_run(ada), new_run(bob)

    def runs(client: Login) -> list[tuple[str, str]]:
        return [(run["uuid"], run["owner"]) for run in client.get("/api/runs").json()["data"]]

    def workers(client: Login) -> list[str]:
        return [worker["uuid"] for worker in client.get("/api/workers").json()["data"]]

    assert runs(ada) == [(adas, "ada")]
    assert runs(bob) == [(bobs, "bob")]
    assert runs(root) == [(adas, "ada"), (bobs, "bob")]
    assert workers(ada) == ["w"]
    assert sorted(workers(root)) == ["w", "w-bob", "w-root"]


def test_an_admin_may_do_anything_to_any_run(as_user: Callable[[str], Login]) -> None:
    ada, root = as_user("ada"), as_user("root")
    run = new_run(ada)

    assert root.get(f"/api/runs/{run}").json()["owner"] == "ada"
    assert root.post(f"/api/runs/{run}/task", json={"worker_uuid": "w-root"}).status_code == 201
    assert root.post(f"/api/runs/{run}/restart").status_code == 204
    assert root.delete(f"/api/runs/{run}").status_code == 204
    assert ada.get(f"/api/runs/{run}").status_code == 404


def test_a_deleted_users_runs_go_to_nobody_and_their_tokens_stop(
    services: Services, as_user: Callable[[str], Login], clock: FakeClock
) -> None:
    ada, root = as_user("ada"), as_user("root")
    run = new_run(ada)
    token = worker_token(ada, run)

    assert services.accounts.delete_user("ada") == 1
    services.accounts.add_user("ada", PASSWORDS["ada"])
    # Server processes remember owners of runs for a while (users are deleted elsewhere).
    clock.advance(dt.timedelta(seconds=REMEMBERED_SECONDS))

    again = as_user("ada")
    assert again.get(f"/api/runs/{run}").status_code == 404
    assert again.get("/api/runs").json()["data"] == []
    assert root.get(f"/api/runs/{run}").json()["owner"] is None
    assert token.get(f"/api/runs/{run}").status_code == 401


# Worker tokens


def test_a_worker_token_works_on_the_tasks_of_its_run(as_user: Callable[[str], Login]) -> None:
    ada = as_user("ada")
    run = new_run(ada, tasks=2)
    secret = ada.post("/api/tokens", json={"run": run, "name": "array-job"}).json()["token"]
    token = Login(ada.client, (secret, ""))

    assert (
        token.post("/api/worker", json={"uuid": "w-t", "hostname": "n", "pid": 2}).status_code
        == 201
    )
    claimed = token.post(f"/api/runs/{run}/task", json={"worker_uuid": "w-t"})
    assert claimed.status_code == 201
    task = claimed.json()["task"]
    path = f"/api/runs/{run}/tasks/{task}"
    assert token.post(path + "/heartbeat", json={"worker_uuid": "w-t"}).status_code == 204
    renewed = token.post(
        f"/api/runs/{run}/tasks/heartbeat", json={"worker_uuid": "w-t", "tasks": [task]}
    )
    assert renewed.json() == {"lost": []}
    assert token.put(path, json={"percentCompleted": 40, "worker_uuid": "w-t"}).status_code == 204
    assert token.put(path, json={"status": "done", "worker_uuid": "w-t"}).status_code == 204
    assert token.get(path).json()["status"] == "done"
    assert token.get(f"/api/runs/{run}").json()["numDone"] == 1
    # The published client asks for a token first: it gets the same one back.
    assert token.get("/api/token").json()["token"] == secret


@pytest.mark.parametrize(
    ("request_of", "scope"),
    [
        (lambda c, run, other: c.delete(f"/api/runs/{run}"), "manage"),
        (lambda c, run, other: c.post(f"/api/runs/{run}/restart"), "manage"),
        (
            lambda c, run, other: c.post(f"/api/runs/{run}/retry", json={"status": "failed"}),
            "manage",
        ),
        (lambda c, run, other: c.post("/api/run", json={"numTasks": 1}), "manage"),
        (lambda c, run, other: c.get("/api/runs"), "manage"),
        (lambda c, run, other: c.get("/api/workers"), "manage"),
        (lambda c, run, other: c.post("/api/tokens", json={"run": run}), "tokens"),
        (lambda c, run, other: c.get("/api/tokens"), "tokens"),
        (lambda c, run, other: c.post(f"/api/runs/{other}/task", json={"worker_uuid": "w"}), None),
        (lambda c, run, other: c.get(f"/api/runs/{other}"), None),
        (lambda c, run, other: c.get(f"/api/runs/{MISSING}/tasks/0"), None),
    ],
    ids=[
        "delete",
        "restart",
        "retry",
        "create",
        "list runs",
        "list workers",
        "make token",
        "list tokens",
        "claim other run",
        "other run info",
        "missing run",
    ],
)
def test_a_worker_token_may_do_nothing_else(
    as_user: Callable[[str], Login],
    request_of: Callable[[Login, str, str], Any],
    scope: str | None,
) -> None:
    ada = as_user("ada")
    run, other = new_run(ada), new_run(ada)
    token = worker_token(ada, run)
    before = ada.get("/api/runs").json()

    answer = request_of(token, run, other)

    assert answer.status_code == 403, answer.text
    detail = answer.json()["detail"]
    assert f"run {run}" in detail
    assert (f"lacks the {scope!r} scope" in detail) if scope else ("only" in detail)
    assert ada.get("/api/runs").json() == before


def test_a_revoked_token_is_refused_at_once(as_user: Callable[[str], Login]) -> None:
    ada, bob = as_user("ada"), as_user("bob")
    run = new_run(ada)
    token = worker_token(ada, run)
    assert token.get(f"/api/runs/{run}").status_code == 200
    [listed] = ada.get("/api/tokens").json()["data"]

    assert bob.delete(f"/api/tokens/{listed['id']}").status_code == 404
    assert ada.delete(f"/api/tokens/{listed['id']}").status_code == 204

    refused = token.get(f"/api/runs/{run}")
    assert refused.status_code == 401
    assert "revoked" in refused.json()["detail"]
    assert ada.get("/api/tokens").json()["data"] == []
    assert ada.delete(f"/api/tokens/{listed['id']}").status_code == 404


def test_tokens_are_listed_for_their_owner_without_their_secret(
    as_user: Callable[[str], Login],
) -> None:
    ada, bob, root = as_user("ada"), as_user("bob"), as_user("root")
    adas = ada.post("/api/tokens", json={"run": new_run(ada), "name": "a", "expiresSeconds": 60})
    bobs = bob.post("/api/tokens", json={"run": new_run(bob)})

    [listed] = ada.get("/api/tokens").json()["data"]
    assert listed == {key: value for key, value in adas.json().items() if key != "token"}
    assert set(listed) >= {"id", "name", "run", "expires", "owner", "created"}
    assert {token["id"] for token in root.get("/api/tokens").json()["data"]} == {
        adas.json()["id"],
        bobs.json()["id"],
    }


def test_an_expired_token_is_refused(as_user: Callable[[str], Login], clock: FakeClock) -> None:
    ada = as_user("ada")
    run = new_run(ada)
    token = worker_token(ada, run, expiresSeconds=60)
    assert token.get(f"/api/runs/{run}").status_code == 200

    clock.advance(LOGIN_WINDOW)

    assert token.get(f"/api/runs/{run}").status_code == 401


@pytest.mark.parametrize(
    "body",
    [{"run": MISSING}, {"run": 7}, {"run": "r", "expiresSeconds": 0}, {"run": "r", "name": "a b"}],
    ids=["missing run", "not a name", "no lifetime", "bad name"],
)
def test_a_bad_token_request_is_refused_and_makes_nothing(
    as_user: Callable[[str], Login], body: dict[str, object]
) -> None:
    ada = as_user("ada")
    new_run(ada, name="r")
    answer = ada.post("/api/tokens", json=body)
    assert answer.status_code in (400, 404)
    assert answer.json()["detail"]
    assert ada.get("/api/tokens").json()["data"] == []


def test_a_users_token_goes_with_any_password(as_user: Callable[[str], Login]) -> None:
    ada = as_user("ada")
    token = ada.get("/api/token").json()["token"]
    ada.auth = (token, "whatever the password")
    assert ada.get("/api/runs").status_code == 200


# Guessing passwords


def test_the_eleventh_wrong_password_is_refused_without_a_kdf_run(
    client: TestClient, hasher: CountingHasher, clock: FakeClock
) -> None:
    guesser = client
    for guess in range(PER_USERNAME):
        assert guesser.get("/api/runs", auth=("ada", f"guess {guess}")).status_code == 401
    checked = hasher.verifications

    refused = guesser.get("/api/runs", auth=("ada", "guess 10"))

    assert refused.status_code == 429
    assert int(refused.headers["Retry-After"]) == LOGIN_WINDOW.total_seconds()
    assert "failed logins" in refused.json()["detail"]
    assert hasher.verifications == checked
    # Even the right password waits out the window; other users do not.
    assert guesser.get("/api/runs", auth=("ada", PASSWORDS["ada"])).status_code == 429
    assert guesser.get("/api/runs", auth=("bob", PASSWORDS["bob"])).status_code == 200
    assert hasher.verifications == checked + 1

    clock.advance(LOGIN_WINDOW)
    assert guesser.get("/api/runs", auth=("ada", PASSWORDS["ada"])).status_code == 200


def test_guesses_at_many_usernames_from_one_address_are_stopped(
    client: TestClient, hasher: CountingHasher
) -> None:
    guesser = client
    for guess in range(PER_ADDRESS):
        assert guesser.get("/api/runs", auth=(f"user{guess}", "guess")).status_code == 401
    checked = hasher.verifications

    assert guesser.get("/api/runs", auth=("ada", PASSWORDS["ada"])).status_code == 429
    assert hasher.verifications == checked


def test_a_right_password_clears_the_usernames_failures(client: TestClient) -> None:
    for _ in range(PER_USERNAME - 1):
        assert client.get("/api/runs", auth=("ada", "typo")).status_code == 401
    assert client.get("/api/runs", auth=("ada", PASSWORDS["ada"])).status_code == 200
    assert client.get("/api/runs", auth=("ada", "typo")).status_code == 401
    assert client.get("/api/runs", auth=("ada", "typo again")).status_code == 401


# Audit


def test_every_change_is_an_audit_line_of_who_did_what(
    as_user: Callable[[str], Login], services: Services, caplog: pytest.LogCaptureFixture
) -> None:
    ada = as_user("ada")
    with caplog.at_level(logging.INFO, logger=AUDIT_LOGGER):
        run = new_run(ada, name="audited")
        made = ada.post("/api/tokens", json={"run": run}).json()
        token = Login(ada.client, (made["token"], ""))
        token.post(f"/api/runs/{run}/task", json={"worker_uuid": "w"})
        ada.delete(f"/api/tokens/{made['id']}")
        ada.post(f"/api/runs/{run}/retry", json={"status": "failed"})
        ada.post(f"/api/runs/{run}/restart")
        ada.delete(f"/api/runs/{run}")
        services.accounts.change_password("bob", "new password")
        services.accounts.delete_user("bob")

    lines = [getattr(record, AUDIT_FIELD) for record in caplog.records]
    assert [(line["who"], line["action"]) for line in lines] == [
        ("ada", "create run"),
        ("ada", "create token"),
        ("ada", "revoke token"),
        ("ada", "retry tasks"),
        ("ada", "restart run"),
        ("ada", "delete run"),
        (operator(), "change password"),
        (operator(), "delete user"),
    ]
    assert all(line.get("run") == run for line in lines[:6])
    assert lines[1]["token"] == made["id"]
    assert lines[7]["user"] == "bob"
