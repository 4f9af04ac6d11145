"""Workers, users and the signing key in every store, behind the `Storage` port."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pytest

from taskfarm.domain import (
    Conflict,
    UserNotFound,
    Worker,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.ports import Storage
from tests.integration.conftest import StorageFactory
from tests.integration.store_contract import NOW

# Workers


def test_a_registered_worker_is_stored_as_it_registered(storage: Storage) -> None:
    worker = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    assert (worker.uuid, worker.hostname, worker.pid, worker.started) == ("w-1", "node7", 4242, NOW)
    assert storage.workers.get_worker("w-1") == worker


def test_registering_the_same_worker_again_returns_it_unchanged(storage: Storage) -> None:
    first = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    again = storage.workers.register(
        WorkerRegistration("w-1", "node7", 4242), NOW + dt.timedelta(hours=1)
    )
    assert again == first
    assert again.started == NOW


@pytest.mark.parametrize(
    "registration",
    [WorkerRegistration("w-1", "node8", 4242), WorkerRegistration("w-1", "node7", 1)],
)
def test_a_known_uuid_with_another_hostname_or_pid_conflicts(
    storage: Storage, registration: WorkerRegistration
) -> None:
    storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    with pytest.raises(Conflict):
        storage.workers.register(registration, NOW)
    assert storage.workers.get_worker("w-1").hostname == "node7"


def test_distinct_workers_get_distinct_ids(storage: Storage) -> None:
    ids = {storage.workers.register(WorkerRegistration(f"w-{i}", "", i), NOW).id for i in range(3)}
    assert len(ids) == 3


def test_an_unknown_worker_is_not_found(storage: Storage) -> None:
    with pytest.raises(WorkerNotFound):
        storage.workers.get_worker("nobody")


def test_a_registered_worker_was_last_seen_when_it_registered(storage: Storage) -> None:
    worker = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    assert worker.last_seen == NOW


def test_a_worker_heard_from_is_last_seen_then(storage: Storage) -> None:
    registered = storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    later = NOW + dt.timedelta(minutes=5, microseconds=1)

    seen = storage.workers.seen("w-1", later)

    assert seen == Worker(registered.id, "w-1", "node7", 4242, started=NOW, last_seen=later)
    assert storage.workers.get_worker("w-1") == seen


def test_registering_again_keeps_when_the_worker_was_last_seen(storage: Storage) -> None:
    registration = WorkerRegistration("w-1", "node7", 4242)
    storage.workers.register(registration, NOW)
    seen = storage.workers.seen("w-1", NOW + dt.timedelta(minutes=5))

    assert storage.workers.register(registration, NOW + dt.timedelta(minutes=9)) == seen


def test_an_unknown_worker_cannot_be_seen(storage: Storage) -> None:
    storage.workers.register(WorkerRegistration("w-1", "node7", 4242), NOW)
    with pytest.raises(WorkerNotFound):
        storage.workers.seen("nobody", NOW)
    assert [worker.uuid for worker in storage.workers.list_workers()] == ["w-1"]


def test_workers_are_listed_in_the_order_they_registered(storage: Storage) -> None:
    assert list(storage.workers.list_workers()) == []
    for number, name in enumerate(["w-c", "w-a", "w-b"]):
        storage.workers.register(WorkerRegistration(name, "node", number), NOW)
    storage.workers.seen("w-a", NOW + dt.timedelta(seconds=1))

    listed = list(storage.workers.list_workers())

    assert [worker.uuid for worker in listed] == ["w-c", "w-a", "w-b"]
    assert listed == [storage.workers.get_worker(worker.uuid) for worker in listed]


# Users


def test_an_added_user_is_stored_with_its_hash_and_stamp(storage: Storage) -> None:
    user = storage.users.add_user("ada", "hash-1", "stamp-1")
    assert (user.username, user.password_hash, user.token_stamp) == ("ada", "hash-1", "stamp-1")
    assert storage.users.get_user("ada") == user


def test_users_are_listed_in_the_order_they_were_added(storage: Storage) -> None:
    added = [storage.users.add_user(name, "h", "s") for name in ["zoe", "ada", "max"]]
    assert list(storage.users.list_users()) == added


def test_a_taken_username_conflicts(storage: Storage) -> None:
    storage.users.add_user("ada", "hash-1", "stamp-1")
    with pytest.raises(Conflict):
        storage.users.add_user("ada", "hash-2", "stamp-2")
    assert storage.users.get_user("ada").password_hash == "hash-1"


def test_setting_a_password_replaces_hash_and_stamp(storage: Storage) -> None:
    user = storage.users.add_user("ada", "hash-1", "stamp-1")
    storage.users.set_password("ada", "hash-2", "stamp-2")
    changed = storage.users.get_user("ada")
    assert (changed.id, changed.password_hash, changed.token_stamp) == (
        user.id,
        "hash-2",
        "stamp-2",
    )


def test_a_deleted_user_is_gone(storage: Storage) -> None:
    storage.users.add_user("ada", "h", "s")
    kept = storage.users.add_user("bob", "h", "s")
    storage.users.delete_user("ada")
    with pytest.raises(UserNotFound):
        storage.users.get_user("ada")
    assert list(storage.users.list_users()) == [kept]


@pytest.mark.parametrize(
    "operation",
    [
        lambda s: s.users.get_user("nobody"),
        lambda s: s.users.delete_user("nobody"),
        lambda s: s.users.set_password("nobody", "h", "s"),
    ],
    ids=["get_user", "delete_user", "set_password"],
)
def test_every_operation_on_an_unknown_user_raises_user_not_found(
    storage: Storage, operation: Callable[[Storage], object]
) -> None:
    storage.users.add_user("somebody", "h", "s")
    with pytest.raises(UserNotFound):
        operation(storage)


# Keys


def test_the_signing_key_is_generated_once_and_kept(storage_factory: StorageFactory) -> None:
    keys = iter([b"first key", b"second key"])
    generated: list[bytes] = []

    def generate() -> bytes:
        generated.append(next(keys))
        return generated[-1]

    assert storage_factory().keys.signing_key(generate) == b"first key"
    assert storage_factory().keys.signing_key(generate) == b"first key"
    assert generated == [b"first key"]
