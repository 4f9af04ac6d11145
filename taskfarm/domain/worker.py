"""A worker: one process somewhere that asks for tasks."""

from __future__ import annotations

import datetime as dt

import attrs

from taskfarm.domain.errors import InvalidInput
from taskfarm.domain.limits import MAX_HOSTNAME_LENGTH, MAX_PID, MAX_UUID_LENGTH
from taskfarm.domain.values import is_identifier, is_storable_text, whole_number

#: When a worker was last heard from is known to within this time: a worker heard from again
#: sooner is not written down again, which spares its claims and updates a write each.
LAST_SEEN_PRECISION = dt.timedelta(seconds=5)


@attrs.frozen
class WorkerRegistration:
    """What a worker says about itself when it registers."""

    uuid: str
    hostname: str
    pid: int

    @classmethod
    def from_fields(cls, uuid: object, hostname: object, pid: object) -> WorkerRegistration:
        if not isinstance(uuid, str) or not is_identifier(uuid, MAX_UUID_LENGTH):
            raise InvalidInput(
                f"uuid must be a string of 1 to {MAX_UUID_LENGTH} characters, without NUL"
            )
        if not isinstance(hostname, str) or not (
            len(hostname) <= MAX_HOSTNAME_LENGTH and is_storable_text(hostname)
        ):
            raise InvalidInput(
                f"hostname must be a string of at most {MAX_HOSTNAME_LENGTH} characters, "
                "without NUL"
            )
        return cls(uuid=uuid, hostname=hostname, pid=whole_number("pid", pid, 0, MAX_PID))


@attrs.frozen
class Worker:
    """A registered worker and when the server last heard from it (to within
    `LAST_SEEN_PRECISION`). `owner` is the user whose credentials registered it: it works on
    their runs, and is listed for them."""

    id: int
    uuid: str
    hostname: str
    pid: int
    started: dt.datetime
    last_seen: dt.datetime
    owner: str | None = None

    @property
    def registration(self) -> WorkerRegistration:
        return WorkerRegistration(uuid=self.uuid, hostname=self.hostname, pid=self.pid)


@attrs.frozen
class WorkerStatus:
    """A worker and how many tasks it is computing."""

    worker: Worker
    tasks_held: int


@attrs.frozen
class TaskHolder:
    """A worker computing tasks of one run, how many, and the worker as it registered (None
    should it be unknown to the worker store)."""

    uuid: str
    tasks_held: int
    worker: Worker | None
