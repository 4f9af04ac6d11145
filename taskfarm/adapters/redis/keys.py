"""The one place that knows key names in Redis.

Every key of a run carries the run's uuid as a hash tag (`{uuid}`), so that a script touching
a run touches one slot and runs unchanged on a Redis Cluster. Workers, users, the run index and
settings each have a tag of their own for the same reason.
"""

from __future__ import annotations

import attrs

from taskfarm.domain import MAX_UUID_LENGTH

_PREFIX = "taskfarm"

RUN_INDEX = f"{_PREFIX}:{{runs}}:index"
#: The uuids of the runs whose tasks have leases: the only runs a sweep has to look at.
LEASED_RUNS = f"{_PREFIX}:{{runs}}:leased"
LAST_RUN_ID = f"{_PREFIX}:{{runs}}:last-id"
#: The uuid of each run that has a name, by name.
RUN_NAMES = f"{_PREFIX}:{{runs}}:names"
WORKER_INDEX = f"{_PREFIX}:{{workers}}:index"
LAST_WORKER_ID = f"{_PREFIX}:{{workers}}:last-id"
USER_INDEX = f"{_PREFIX}:{{users}}:index"
LAST_USER_ID = f"{_PREFIX}:{{users}}:last-id"
SIGNING_KEY = f"{_PREFIX}:{{settings}}:signing-key"
#: The digest of each worker token, by id; the ids by when they were made.
TOKEN_IDS = f"{_PREFIX}:{{tokens}}:ids"
TOKEN_INDEX = f"{_PREFIX}:{{tokens}}:index"


def is_run_uuid(uuid: str) -> bool:
    """Whether `uuid` could name one of our runs. Anything else must not become a key: a
    brace in it would change the hash tag and scatter the run's keys over cluster slots."""
    return 0 < len(uuid) <= MAX_UUID_LENGTH and "{" not in uuid and "}" not in uuid


@attrs.frozen
class RunKeys:
    """The keys of one run: its counters and policy, its touched tasks, its two queues of
    waiting tasks (requeued and deferred, each scored by index), its computing tasks scored by
    when their lease runs out (`+inf` without one), its failed tasks scored by index, and the
    records of its tasks' last attempts.

    Every run script takes `all()` as its KEYS, in this order.
    """

    run: str
    tasks: str
    waiting: str
    deferred: str
    computing: str
    failed: str
    attempts: str
    #: Not among a script's KEYS: the sweep of a run whose inputs are one, and the stored
    #: inputs of its tasks (a hash, by index).
    sweep: str
    inputs: str

    @classmethod
    def of(cls, uuid: str) -> RunKeys:
        tag = f"{_PREFIX}:{{{uuid}}}"
        return cls(
            run=f"{tag}:run",
            tasks=f"{tag}:tasks",
            waiting=f"{tag}:waiting",
            deferred=f"{tag}:deferred",
            computing=f"{tag}:computing",
            failed=f"{tag}:failed",
            attempts=f"{tag}:attempts",
            sweep=f"{tag}:sweep",
            inputs=f"{tag}:inputs",
        )

    def all(self) -> list[str]:
        return [
            self.run,
            self.tasks,
            self.waiting,
            self.deferred,
            self.computing,
            self.failed,
            self.attempts,
        ]

    @property
    def queues(self) -> tuple[str, str]:
        """The sorted sets that hold, between them, every stored waiting task."""
        return self.waiting, self.deferred


def worker(uuid: str) -> str:
    return f"{_PREFIX}:{{workers}}:worker:{uuid}"


def user(username: str) -> str:
    return f"{_PREFIX}:{{users}}:user:{username}"


def token(digest: str) -> str:
    return f"{_PREFIX}:{{tokens}}:token:{digest}"


def failed_logins(counted_by: str) -> str:
    return f"{_PREFIX}:{{logins}}:{counted_by}"
