"""A worker: one process somewhere that asks for tasks."""

from __future__ import annotations

import datetime as dt

import attrs

from taskfarm.domain.errors import InvalidInput

MAX_UUID_LENGTH = 64
MAX_HOSTNAME_LENGTH = 255


@attrs.frozen
class WorkerRegistration:
    """What a worker says about itself when it registers."""

    uuid: str
    hostname: str
    pid: int

    @classmethod
    def from_fields(cls, uuid: object, hostname: object, pid: object) -> WorkerRegistration:
        if not isinstance(uuid, str) or not 0 < len(uuid) <= MAX_UUID_LENGTH:
            raise InvalidInput(f"uuid must be a string of 1 to {MAX_UUID_LENGTH} characters")
        if not isinstance(hostname, str) or len(hostname) > MAX_HOSTNAME_LENGTH:
            raise InvalidInput(
                f"hostname must be a string of at most {MAX_HOSTNAME_LENGTH} characters"
            )
        if isinstance(pid, bool) or not isinstance(pid, int) or not 0 <= pid < 2**63:
            raise InvalidInput(f"pid must be a non-negative whole number, not {pid!r}")
        return cls(uuid=uuid, hostname=hostname, pid=pid)


@attrs.frozen
class Worker:
    id: int
    uuid: str
    hostname: str
    pid: int
    started: dt.datetime

    @property
    def registration(self) -> WorkerRegistration:
        return WorkerRegistration(uuid=self.uuid, hostname=self.hostname, pid=self.pid)
