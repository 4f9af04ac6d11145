"""The use cases of runs and workers, and of users and tokens, on the memory store."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest

from taskfarm.accounts import Accounts
from taskfarm.adapters.tokens import JwtSigner
from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_TASKS,
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    RunNotFound,
    Task,
    TaskChange,
    TaskNotFound,
    TaskState,
    User,
    UserNotFound,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.service import TaskFarm
from tests.fakes import FakeClock
from tests.unit.conftest import TOKEN_LIFETIME

WORKER = WorkerRegistration(uuid="worker-1", hostname="node1", pid=1234)


@pytest.fixture
def worker(taskfarm: TaskFarm) -> str:
    return taskfarm.register_worker(WORKER).uuid


# Runs and workers


@pytest.mark.parametrize("num_tasks", [0, -3, MAX_TASKS + 1, True, 3.0, "3", None])
def test_run_of_an_invalid_number_of_tasks_is_refused(
    taskfarm: TaskFarm, num_tasks: object
) -> None:
    with pytest.raises(InvalidInput, match="numTasks"):
        taskfarm.create_run(num_tasks)

    assert taskfarm.list_runs() == []


def test_largest_run_is_created_untouched(taskfarm: TaskFarm) -> None:
    run = taskfarm.create_run(MAX_TASKS)

    assert taskfarm.get_run(run.uuid) == run
    assert (run.num_waiting, run.percent_done) == (MAX_TASKS, 0.0)
    assert taskfarm.get_task(run.uuid, MAX_TASKS - 1) == Task.untouched(MAX_TASKS - 1)


def test_runs_get_distinct_uuids_and_are_listed_in_creation_order(taskfarm: TaskFarm) -> None:
    runs = [taskfarm.create_run(n) for n in (3, 1, 2)]

    assert len({run.uuid for run in runs}) == 3
    assert taskfarm.list_runs() == runs


def test_registered_worker_starts_at_the_clock_time(taskfarm: TaskFarm, clock: FakeClock) -> None:
    worker = taskfarm.register_worker(WORKER)

    assert (worker.registration, worker.started) == (WORKER, clock.now())


def test_registering_the_same_worker_again_returns_it_unchanged(
    taskfarm: TaskFarm, clock: FakeClock
) -> None:
    first = taskfarm.register_worker(WORKER)
    clock.advance(dt.timedelta(minutes=5))

    assert taskfarm.register_worker(WORKER) == first


def test_worker_uuid_taken_by_another_process_is_a_conflict(taskfarm: TaskFarm) -> None:
    taskfarm.register_worker(WORKER)

    with pytest.raises(Conflict):
        taskfarm.register_worker(WorkerRegistration(WORKER.uuid, WORKER.hostname, pid=999))


def test_claim_by_an_unregistered_worker_is_refused(taskfarm: TaskFarm) -> None:
    run = taskfarm.create_run(3)

    with pytest.raises(WorkerNotFound):
        taskfarm.claim_task(run.uuid, "nobody")

    assert taskfarm.get_run(run.uuid).num_computing == 0


def test_claim_on_an_unknown_run_is_refused(taskfarm: TaskFarm, worker: str) -> None:
    with pytest.raises(RunNotFound):
        taskfarm.claim_task("no-such-run", worker)


def test_claims_hand_out_every_task_in_order_then_nothing(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(3)

    claimed = [taskfarm.claim_task(run.uuid, worker) for _ in range(4)]

    assert claimed == [Task(i, TaskState.COMPUTING, 0, worker) for i in range(3)] + [None]
    assert taskfarm.get_run(run.uuid).num_computing == 3


def test_requeued_task_is_handed_out_before_untouched_ones(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(5)
    for _ in range(3):
        taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 2, TaskChange(progress=10, state=TaskState.WAITING))
    taskfarm.update_task(run.uuid, 1, TaskChange(state=TaskState.WAITING))

    order = [taskfarm.claim_task(run.uuid, worker) for _ in range(3)]

    assert [task.index for task in order if task is not None] == [1, 2, 3]
    assert order[1] == Task(2, TaskState.COMPUTING, 10, worker)


def test_task_written_out_of_order_is_skipped_by_claims(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(3)
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))

    claimed = [taskfarm.claim_task(run.uuid, worker) for _ in range(3)]

    assert [task.index if task else None for task in claimed] == [0, 2, None]


def test_update_moves_the_run_counters(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(4)
    taskfarm.claim_task(run.uuid, worker)
    taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=FULL_PROGRESS // 2))

    run = taskfarm.get_run(run.uuid)

    assert (run.num_done, run.num_computing, run.num_waiting) == (1, 1, 2)
    assert run.percent_done == pytest.approx(37.5)


def test_partial_restart_redoes_only_unfinished_tasks(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(3)
    for _ in range(3):
        taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))
    taskfarm.update_task(run.uuid, 1, TaskChange(progress=5, state=TaskState.DONE))

    taskfarm.restart_run(run.uuid, everything=False)

    assert taskfarm.get_task(run.uuid, 0) == Task(0, TaskState.DONE, FULL_PROGRESS, worker)
    assert taskfarm.get_task(run.uuid, 1) == Task(1, TaskState.WAITING, 5)
    assert taskfarm.get_task(run.uuid, 2) == Task(2, TaskState.WAITING, 0)
    assert taskfarm.get_run(run.uuid).num_done == 1
    assert [taskfarm.claim_task(run.uuid, worker) for _ in range(3)][-1] is None


def test_full_restart_makes_every_task_untouched(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(2)
    taskfarm.claim_task(run.uuid, worker)
    taskfarm.update_task(run.uuid, 0, TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE))

    taskfarm.restart_run(run.uuid, everything=True)

    assert taskfarm.get_task(run.uuid, 0) == Task.untouched(0)
    assert (taskfarm.get_run(run.uuid).num_waiting, taskfarm.get_run(run.uuid).percent_done) == (
        2,
        0,
    )


@pytest.mark.parametrize("index", [-1, 3])
def test_task_outside_the_run_is_not_found(taskfarm: TaskFarm, index: int) -> None:
    run = taskfarm.create_run(3)

    with pytest.raises(TaskNotFound):
        taskfarm.get_task(run.uuid, index)
    with pytest.raises(TaskNotFound):
        taskfarm.update_task(run.uuid, index, TaskChange(progress=1))


def test_deleted_run_is_gone(taskfarm: TaskFarm, worker: str) -> None:
    run = taskfarm.create_run(3)
    taskfarm.claim_task(run.uuid, worker)

    taskfarm.delete_run(run.uuid)

    assert taskfarm.list_runs() == []
    with pytest.raises(RunNotFound):
        taskfarm.get_run(run.uuid)
    with pytest.raises(RunNotFound):
        taskfarm.delete_run(run.uuid)


# Users and passwords


@pytest.mark.parametrize("username", ["", "a:b", "x" * 65, "tab\there"])
def test_user_with_an_invalid_name_is_refused(accounts: Accounts, username: str) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user(username, "secret")

    assert not accounts.has_users()


def test_user_with_an_empty_password_is_refused(accounts: Accounts) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user("alice", "")


def test_second_user_of_the_same_name_is_a_conflict(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    with pytest.raises(Conflict):
        accounts.add_user("alice", "other")

    assert accounts.authenticate("alice", "secret").username == "alice"


def test_users_are_listed_and_stored_without_their_password(accounts: Accounts) -> None:
    alice = accounts.add_user("alice", "secret")
    bob = accounts.add_user("bob", "hunter2")

    assert accounts.list_users() == [alice, bob]
    assert "secret" not in alice.password_hash
    assert alice.token_stamp != bob.token_stamp


def test_right_password_authenticates_the_user(accounts: Accounts) -> None:
    alice = accounts.add_user("alice", "secret")

    assert accounts.authenticate("alice", "secret") == alice


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("alice", ""), ("bob", "secret"), ("", "secret")]
)
def test_wrong_password_or_unknown_user_fails_alike(
    accounts: Accounts, username: str, password: str
) -> None:
    accounts.add_user("alice", "secret")

    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        accounts.authenticate(username, password)


def test_changed_password_replaces_the_old_one(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    accounts.change_password("alice", "new secret")

    assert accounts.authenticate("alice", "new secret").username == "alice"
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "secret")


def test_password_of_an_unknown_user_cannot_be_changed(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound):
        accounts.change_password("nobody", "secret")


def test_deleted_user_cannot_authenticate(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    accounts.delete_user("alice")

    assert not accounts.has_users()
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "secret")
    with pytest.raises(UserNotFound):
        accounts.delete_user("alice")


# Tokens


@pytest.fixture
def alice(accounts: Accounts) -> User:
    return accounts.add_user("alice", "secret")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def test_issued_token_authenticates_its_user(accounts: Accounts, alice: User) -> None:
    token = accounts.issue_token(alice)

    assert accounts.authenticate_token(token) == alice


def test_token_is_accepted_until_just_before_its_lifetime_ends(
    accounts: Accounts, alice: User, clock: FakeClock
) -> None:
    token = accounts.issue_token(alice)

    clock.advance(TOKEN_LIFETIME - dt.timedelta(seconds=1))

    assert accounts.authenticate_token(token) == alice


@pytest.mark.parametrize("past", [dt.timedelta(0), dt.timedelta(seconds=1), dt.timedelta(days=30)])
def test_token_expires_when_the_clock_reaches_the_end_of_its_lifetime(
    accounts: Accounts, alice: User, clock: FakeClock, past: dt.timedelta
) -> None:
    token = accounts.issue_token(alice)

    clock.advance(TOKEN_LIFETIME + past)

    with pytest.raises(AuthenticationFailed, match="expired"):
        accounts.authenticate_token(token)


def test_token_dies_when_the_password_changes(accounts: Accounts, alice: User) -> None:
    old_token = accounts.issue_token(alice)

    accounts.change_password("alice", "new secret")

    with pytest.raises(AuthenticationFailed, match="revoked"):
        accounts.authenticate_token(old_token)
    new_token = accounts.issue_token(accounts.authenticate("alice", "new secret"))
    assert accounts.authenticate_token(new_token).username == "alice"


def test_token_dies_with_its_user_even_when_the_name_is_taken_again(
    accounts: Accounts, alice: User
) -> None:
    token = accounts.issue_token(alice)

    accounts.delete_user("alice")
    with pytest.raises(AuthenticationFailed, match="no longer exists"):
        accounts.authenticate_token(token)

    accounts.add_user("alice", "secret")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_token_signed_with_another_key_is_refused(
    accounts: Accounts, alice: User, clock: FakeClock
) -> None:
    forged = JwtSigner(b"another key, of thirty-two bytes").issue(
        {"sub": "alice", "stamp": alice.token_stamp}, clock.now() + TOKEN_LIFETIME
    )

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(forged)


def test_token_whose_claims_were_altered_is_refused(accounts: Accounts, alice: User) -> None:
    header, _, signature = accounts.issue_token(alice).split(".")
    bob = accounts.add_user("bob", "hunter2")
    claims = {"sub": "bob", "stamp": bob.token_stamp, "exp": 2**40}

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(f"{header}.{_json_b64(claims)}.{signature}")


def test_token_whose_signature_was_altered_is_refused(accounts: Accounts, alice: User) -> None:
    header, payload, signature = accounts.issue_token(alice).split(".")
    # The first character carries six bits of the signature, unlike the last.
    altered = ("B" if signature[0] == "A" else "A") + signature[1:]

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(f"{header}.{payload}.{altered}")


def test_unsigned_alg_none_token_is_refused(accounts: Accounts, alice: User) -> None:
    claims = _payload(accounts.issue_token(alice))
    unsigned = f"{_json_b64({'alg': 'none', 'typ': 'JWT'})}.{_json_b64(claims)}."

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(unsigned)


def test_token_signed_with_another_algorithm_is_refused(
    accounts: Accounts, alice: User, signing_key: bytes, clock: FakeClock
) -> None:
    claims = {"sub": "alice", "stamp": alice.token_stamp, "exp": clock.now() + TOKEN_LIFETIME}
    token = jwt.encode(claims, signing_key, algorithm="HS512")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_token_without_expiry_is_refused(
    accounts: Accounts, alice: User, signing_key: bytes
) -> None:
    token = jwt.encode({"sub": "alice", "stamp": alice.token_stamp}, signing_key, algorithm="HS256")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_oversized_token_is_refused_even_when_properly_signed(
    accounts: Accounts, alice: User, signing_key: bytes, clock: FakeClock
) -> None:
    claims = {"sub": "alice", "stamp": alice.token_stamp, "padding": "x" * 1024}
    token = JwtSigner(signing_key).issue(claims, clock.now() + TOKEN_LIFETIME)

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "..", "é.é.é"])
def test_garbage_token_is_refused(accounts: Accounts, alice: User, token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)
