"""Where runs, tasks, workers and users live. Every method is one atomic operation."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from taskfarm.domain import (
    FailedLogins,
    Run,
    RunInputs,
    RunPolicy,
    SchemaUpgrade,
    Sweep,
    Task,
    TaskChange,
    TaskPage,
    TaskState,
    User,
    Wanted,
    Worker,
    WorkerRegistration,
    WorkerToken,
)


class RunStore(Protocol):
    """Runs and their tasks. Only tasks someone has touched are stored."""

    def create_run(
        self,
        uuid: str,
        num_tasks: int,
        policy: RunPolicy,
        *,
        name: str | None = None,
        created: dt.datetime | None = None,
        inputs: RunInputs | None = None,
        owner: str | None = None,
    ) -> Run:
        """Stores a run in O(1), whatever its number of tasks (a sweep's axes included);
        Conflict if the uuid, or the name (`check_run_name`), is taken. A run of stored inputs
        finds them staged (`stage_inputs`)."""
        ...

    def stage_inputs(self, run_uuid: str, first: int, inputs: Sequence[str]) -> None:
        """Stores the inputs of the tasks `first`, `first + 1`, ... of a run about to be
        created, as JSON text (`encode_input`): a run's inputs are written in chunks, before
        the run exists, so that no worker ever sees a run with some of them missing."""
        ...

    def discard_inputs(self, run_uuid: str) -> None:
        """Drops the staged inputs of a run that will not be created."""
        ...

    def run_sweep(self, run_uuid: str) -> Sweep:
        """The sweep of a run whose inputs are one; raises RunNotFound."""
        ...

    def task_inputs(self, run_uuid: str, indices: Sequence[int]) -> list[str | None]:
        """The stored inputs of the run's tasks at `indices`, as JSON text; None for a task
        that has none."""
        ...

    def named_run(self, name: str) -> str:
        """The uuid of the run called `name`; raises RunNotFound."""
        ...

    def list_runs(self, owner: str | None = None) -> Sequence[Run]:
        """Every run, or every run of `owner`, in the order they were created."""
        ...

    def disown(self, owner: str) -> int:
        """Leaves the runs of `owner` (a user deleted) to nobody; returns how many there were."""
        ...

    def get_run(self, uuid: str) -> Run:
        """The run with its counters, in O(1); raises RunNotFound."""
        ...

    def delete_run(self, uuid: str) -> None:
        """Deletes the run and all its tasks; raises RunNotFound."""
        ...

    async def claim_batch(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        """The one claim operation: hands each claim of the batch, in turn, up to its count of
        tasks, one `next_claim` and `Task.claimed_by` after another, atomically: no task is
        ever handed to two concurrent callers. A claim gets an empty list when nothing is
        left. Raises RunNotFound. Never blocks the event loop: a store whose driver can wait
        on the loop does so, others wait in a worker thread. Callers batch their claims
        (`ClaimBatches`): one trip to the database for many, not one each."""
        ...

    def get_task(self, run_uuid: str, index: int) -> Task:
        """The task, untouched or not; raises RunNotFound or TaskNotFound."""
        ...

    def update_task(
        self,
        run_uuid: str,
        index: int,
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> Task:
        """Applies `Task.changed` and moves the run's counters, atomically, and keeps the
        record of the attempt the change ends (`Task.attempt_ended`, `kept_attempt`); raises
        Conflict, changing nothing, when `worker_uuid` is given and another worker holds the
        task."""
        ...

    def change_tasks(
        self,
        run_uuid: str,
        indices: Sequence[int],
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> list[int]:
        """`update_task` for each of the tasks at `indices` (distinct), all in one atomic
        step: a worker reports a batch of tasks done in one trip. Returns the indices whose
        change `Task.changed` refuses (another worker holds the task, or a heartbeat finds it
        not computing), in the order given, each left as it was. Raises RunNotFound, or
        TaskNotFound for an index outside the run, changing nothing."""
        ...

    def retry(self, run_uuid: str, indices: Sequence[int] | None) -> int:
        """Applies `Task.retried` to the `retryable` tasks among `indices` (None: every failed
        task of the run), atomically, and returns how many there were; others, and indices
        outside the run, are left alone. Their attempt records are kept. Raises RunNotFound."""
        ...

    def list_tasks(self, run_uuid: str, state: TaskState, after: int, limit: int) -> TaskPage:
        """The run's tasks in `state` with an index past `after`, at most `limit`, in index
        order, each with its attempt record: a page as `taskfarm.domain.pages` describes,
        costing what it holds (or, for computing tasks, the run's computing tasks). Waiting
        tasks include untouched ones. Raises RunNotFound."""
        ...

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        """Applies `Task.restarted` to every stored task of the run, atomically; a restart of
        `everything` drops their attempt records too."""
        ...

    def expire_leases(self, now: dt.datetime) -> int:
        """Applies `Task.expired` to every task of every run whose lease ran out by `now`,
        each atomically with its run's counters and its record, `Task.attempt_lost`; returns
        how many there were."""
        ...

    def tasks_held(self) -> Mapping[str, int]:
        """How many tasks each worker is computing, for the workers computing any."""
        ...

    # What people watching a run see. Each costs in proportion to what it returns (or to the
    # run's computing tasks), never to the run's size: untouched tasks are not even stored.
    # `limit` is at least 1.

    def holders(self, run_uuid: str) -> Mapping[str, int]:
        """How many of the run's tasks each worker is computing, for the workers computing
        any; raises RunNotFound."""
        ...

    def requeued_tasks(self, run_uuid: str, limit: int) -> Sequence[Task]:
        """The first `limit` tasks of the run that were handed back (stored, and waiting: a
        lease ran out, a command failed with attempts left, a worker gave the task up, or the
        run was restarted), lowest index first, deferred or not; raises RunNotFound."""
        ...


class WorkerStore(Protocol):
    """The workers that registered, and when each was last heard from."""

    def register(
        self, registration: WorkerRegistration, now: dt.datetime, owner: str | None = None
    ) -> Worker:
        """Stores a new worker of `owner`; registering the same worker again returns it
        unchanged. Raises Conflict when the uuid belongs to a worker with another hostname or
        pid."""
        ...

    def get_worker(self, uuid: str) -> Worker:
        """Raises WorkerNotFound."""
        ...

    def seen(self, uuid: str, now: dt.datetime) -> Worker:
        """Records that the worker was heard from `now`; raises WorkerNotFound."""
        ...

    def list_workers(self, owner: str | None = None) -> Sequence[Worker]:
        """Every worker, or every worker of `owner`, in the order they registered."""
        ...


class UserStore(Protocol):
    """The users and their password hashes."""

    def add_user(
        self, username: str, password_hash: str, token_stamp: str, *, admin: bool = False
    ) -> User:
        """Raises Conflict when the name is taken."""
        ...

    def get_user(self, username: str) -> User:
        """Raises UserNotFound."""
        ...

    def list_users(self) -> Sequence[User]: ...

    def delete_user(self, username: str) -> None:
        """Raises UserNotFound."""
        ...

    def set_password(self, username: str, password_hash: str, token_stamp: str) -> None:
        """Raises UserNotFound."""
        ...


class TokenStore(Protocol):
    """Worker tokens, each stored as a digest (`token_digest`) with what it may do."""

    def add_token(self, token: WorkerToken, digest: str) -> None: ...

    def token_by_digest(self, digest: str) -> WorkerToken | None:
        """None for a token never made, or revoked since."""
        ...

    def list_tokens(self, owner: str | None = None) -> Sequence[WorkerToken]:
        """Every token, or every token of `owner`, oldest first."""
        ...

    def revoke_token(self, token_id: str) -> WorkerToken:
        """Deletes the token; raises TokenNotFound."""
        ...


class LoginFailureStore(Protocol):
    """Failed logins lately, counted by username and by client address (`domain.logins`),
    shared by every server process."""

    def failed_logins(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> list[FailedLogins | None]:
        """The failures counted by each key in its window, if that has not ended by `now`."""
        ...

    def count_failed_login(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> None:
        """Counts one more failure by each key, in a window of its own that starts with its
        first failure and lasts `window`; a key whose window ended starts a new one."""
        ...

    def forget_failed_logins(self, counted_by: str) -> None: ...


class KeyStore(Protocol):
    """Keeps the server's token signing key."""

    def signing_key(self, generate: Callable[[], bytes]) -> bytes:
        """The stored key; on first use stores `generate()`, atomically, so that every
        server process sharing the store signs with the same key."""
        ...


class Storage(Protocol):
    """One backend, everything the service needs from it."""

    @property
    def runs(self) -> RunStore: ...

    @property
    def workers(self) -> WorkerStore: ...

    @property
    def users(self) -> UserStore: ...

    @property
    def keys(self) -> KeyStore: ...

    @property
    def tokens(self) -> TokenStore: ...

    @property
    def logins(self) -> LoginFailureStore: ...

    def create_schema(self) -> None:
        """Creates whatever the backend needs in an empty database; does nothing when it is
        there and up to date. Raises SchemaMismatch, changing nothing, when the database
        holds an older schema (upgrading data is a deliberate step, `upgrade_schema`) or a
        newer one."""
        ...

    def upgrade_schema(self) -> SchemaUpgrade | None:
        """Brings the schema of a database, empty or made by any earlier taskfarm, to the
        current one, atomically; None from a backend that keeps no schema. Raises
        SchemaMismatch for a schema newer than this code knows."""
        ...

    def ping(self) -> None:
        """Raises StorageError unless the database answers; cheap enough for health checks."""
        ...

    async def leave_loop(self) -> None:
        """Closes the connections opened on the running event loop, before it stops."""
        ...

    def close(self) -> None: ...
