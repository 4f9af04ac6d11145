"""What can go wrong, in the words of the domain.

Entry points map these to responses in one place; adapters translate their drivers' errors
into `StorageError` so that nothing from a driver leaks above them.
"""

from __future__ import annotations


class TaskFarmError(Exception):
    """Base of every error taskfarm raises on purpose."""


class NotFound(TaskFarmError):
    """Something named in a request does not exist."""


class RunNotFound(NotFound):
    def __init__(self, uuid: str) -> None:
        super().__init__(f"no run with uuid {uuid!r}")


class TaskNotFound(NotFound):
    def __init__(self, index: object, num_tasks: int) -> None:
        super().__init__(
            f"no task {index} in this run: its tasks are numbered 0 to {num_tasks - 1}"
        )


class WorkerNotFound(NotFound):
    def __init__(self, uuid: str) -> None:
        super().__init__(f"no worker with uuid {uuid!r}: register it first with POST /api/worker")


class UserNotFound(NotFound):
    def __init__(self, username: str) -> None:
        super().__init__(f"no user named {username!r}")


class TokenNotFound(NotFound):
    def __init__(self, token_id: str) -> None:
        super().__init__(f"no worker token {token_id!r}: see `taskfarm tokens list`")


class InvalidInput(TaskFarmError, ValueError):
    """A value breaks a rule of the domain (a percentage over 100, a run of no tasks...)."""


class Conflict(TaskFarmError):
    """The request contradicts what is already stored."""


class AuthenticationFailed(TaskFarmError):
    """The credentials do not identify a user."""


class Forbidden(TaskFarmError):
    """The credentials are good, but do not allow what was asked."""


class TooManyFailedLogins(TaskFarmError):
    """Logins failed too often lately, for this username or from this address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins lately: try again in {retry_after} s, or use a token"
        )
        self.retry_after = retry_after


class StorageError(TaskFarmError):
    """The store could not do what was asked (unreachable, overloaded, broken)."""


class StorageFull(StorageError):
    """The database has no room left for the write (a full disk, Redis at its `maxmemory`);
    nothing of it was written, and the same request succeeds once there is room."""


class SchemaMismatch(StorageError):
    """The database's schema is not the one this taskfarm uses: an older one, which is upgraded
    deliberately, after a backup, or a newer one, made by a later taskfarm."""
