"""Owners, worker tokens and failed logins in every store, behind the `Storage` port."""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.domain import (
    Conflict,
    FailedLogins,
    RunPolicy,
    TokenNotFound,
    WorkerRegistration,
    WorkerToken,
)
from taskfarm.ports import Storage
from tests.integration.conftest import StorageFactory
from tests.integration.store_contract import NOW

WINDOW = dt.timedelta(minutes=5)


def _token(token_id: str, owner: str = "ada", **fields: object) -> WorkerToken:
    return WorkerToken(**{"id": token_id, "run": "run-1", "owner": owner, "created": NOW, **fields})  # type: ignore[arg-type]


# Owners


def test_a_run_keeps_its_owner_and_is_listed_for_them_only(storage: Storage) -> None:
    storage.runs.create_run("r-ada", 3, RunPolicy(), created=NOW, owner="ada")
    storage.runs.create_run("r-bob", 3, RunPolicy(), created=NOW, owner="bob")
    storage.runs.create_run("r-none", 3, RunPolicy(), created=NOW)

    assert storage.runs.get_run("r-ada").owner == "ada"
    assert [run.uuid for run in storage.runs.list_runs("ada")] == ["r-ada"]
    assert [run.uuid for run in storage.runs.list_runs()] == ["r-ada", "r-bob", "r-none"]
    assert list(storage.runs.list_runs("carol")) == []


def test_disowned_runs_belong_to_nobody(storage: Storage) -> None:
    for uuid in ["r-1", "r-2"]:
        storage.runs.create_run(uuid, 3, RunPolicy(), created=NOW, owner="ada")
    storage.runs.create_run("r-bob", 3, RunPolicy(), created=NOW, owner="bob")

    assert storage.runs.disown("ada") == 2

    assert [storage.runs.get_run(uuid).owner for uuid in ["r-1", "r-2", "r-bob"]] == [
        None,
        None,
        "bob",
    ]
    assert list(storage.runs.list_runs("ada")) == []
    assert storage.runs.disown("ada") == 0


def test_a_worker_keeps_the_user_who_registered_it(storage: Storage) -> None:
    storage.workers.register(WorkerRegistration("w-ada", "node", 1), NOW, owner="ada")
    storage.workers.register(WorkerRegistration("w-bob", "node", 2), NOW, owner="bob")

    assert storage.workers.get_worker("w-ada").owner == "ada"
    assert storage.workers.seen("w-ada", NOW).owner == "ada"
    assert [worker.uuid for worker in storage.workers.list_workers("bob")] == ["w-bob"]
    assert len(storage.workers.list_workers()) == 2


def test_a_user_is_an_admin_only_when_added_as_one(storage: Storage) -> None:
    storage.users.add_user("root", "h", "s", admin=True)
    storage.users.add_user("ada", "h", "s")

    assert [(user.username, user.admin) for user in storage.users.list_users()] == [
        ("root", True),
        ("ada", False),
    ]
    assert storage.users.get_user("root").admin


# Worker tokens


def test_a_token_is_found_by_its_digest_only(storage: Storage) -> None:
    token = _token("t-1", expires=NOW + dt.timedelta(days=7), name="array-job")
    storage.tokens.add_token(token, "digest-1")

    assert storage.tokens.token_by_digest("digest-1") == token
    assert storage.tokens.token_by_digest("digest-2") is None
    assert storage.tokens.token_by_digest("t-1") is None


def test_a_token_without_expiry_or_name_reads_back_so(storage: Storage) -> None:
    storage.tokens.add_token(_token("t-1"), "digest-1")
    found = storage.tokens.token_by_digest("digest-1")
    assert found is not None
    assert (found.expires, found.name) == (None, None)


def test_tokens_are_listed_oldest_first_for_their_owner(storage: Storage) -> None:
    tokens = [
        _token(token_id, owner, created=NOW + dt.timedelta(seconds=seconds))
        for seconds, (token_id, owner) in enumerate(
            [("t-c", "ada"), ("t-a", "bob"), ("t-b", "ada")]
        )
    ]
    for number, token in enumerate(tokens):
        storage.tokens.add_token(token, f"digest-{number}")

    assert list(storage.tokens.list_tokens()) == tokens
    assert list(storage.tokens.list_tokens("ada")) == [tokens[0], tokens[2]]
    assert list(storage.tokens.list_tokens("carol")) == []


def test_a_taken_token_id_conflicts(storage: Storage) -> None:
    storage.tokens.add_token(_token("t-1"), "digest-1")
    with pytest.raises(Conflict):
        storage.tokens.add_token(_token("t-1", "bob"), "digest-2")
    assert storage.tokens.token_by_digest("digest-2") is None
    assert [token.owner for token in storage.tokens.list_tokens()] == ["ada"]


def test_a_revoked_token_is_found_no_more(storage_factory: StorageFactory) -> None:
    storage = storage_factory()
    storage.tokens.add_token(_token("t-1"), "digest-1")
    kept = _token("t-2")
    storage.tokens.add_token(kept, "digest-2")

    assert storage.tokens.revoke_token("t-1") == _token("t-1")

    # Seen by another connection, as another server process would.
    other = storage_factory()
    assert other.tokens.token_by_digest("digest-1") is None
    assert list(other.tokens.list_tokens()) == [kept]
    with pytest.raises(TokenNotFound):
        other.tokens.revoke_token("t-1")


# Failed logins


def test_no_failed_login_is_known_at_first(storage: Storage) -> None:
    assert storage.logins.failed_logins(["user:ada", "address:a"], NOW, WINDOW) == [None, None]


def test_failed_logins_are_counted_by_each_key_from_the_first(storage: Storage) -> None:
    for seconds in range(3):
        storage.logins.count_failed_login(
            ["user:ada", "address:a"], NOW + dt.timedelta(seconds=seconds), WINDOW
        )
    storage.logins.count_failed_login(
        ["user:bob", "address:a"], NOW + dt.timedelta(minutes=1), WINDOW
    )

    assert storage.logins.failed_logins(
        ["user:ada", "user:bob", "address:a"], NOW + dt.timedelta(minutes=2), WINDOW
    ) == [
        FailedLogins(3, NOW),
        FailedLogins(1, NOW + dt.timedelta(minutes=1)),
        FailedLogins(4, NOW),
    ]


def test_a_window_that_ended_is_not_counted_and_starts_again(storage: Storage) -> None:
    storage.logins.count_failed_login(["user:ada"], NOW, WINDOW)
    storage.logins.count_failed_login(["user:ada"], NOW, WINDOW)
    later = NOW + WINDOW

    assert storage.logins.failed_logins(["user:ada"], later, WINDOW) == [None]
    storage.logins.count_failed_login(["user:ada"], later, WINDOW)
    assert storage.logins.failed_logins(["user:ada"], later, WINDOW) == [FailedLogins(1, later)]


def test_forgotten_failed_logins_are_gone_for_that_key_only(storage: Storage) -> None:
    storage.logins.count_failed_login(["user:ada", "address:a"], NOW, WINDOW)
    storage.logins.forget_failed_logins("user:ada")
    assert storage.logins.failed_logins(["user:ada", "address:a"], NOW, WINDOW) == [
        None,
        FailedLogins(1, NOW),
    ]


def test_failed_logins_are_shared_by_every_connection(storage_factory: StorageFactory) -> None:
    first, second = storage_factory(), storage_factory()
    first.logins.count_failed_login(["user:ada"], NOW, WINDOW)
    second.logins.count_failed_login(["user:ada"], NOW, WINDOW)
    assert first.logins.failed_logins(["user:ada"], NOW, WINDOW) == [FailedLogins(2, NOW)]
