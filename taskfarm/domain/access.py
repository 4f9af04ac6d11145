"""Who may do what: a user sees and changes only their own runs, an admin every run, and a
worker token only works on the tasks of the one run it was made for."""

from __future__ import annotations

import enum

import attrs

from taskfarm.domain.errors import Forbidden, RunNotFound
from taskfarm.domain.user import User


class Scope(enum.Enum):
    """What a request does, as far as credentials go."""

    #: Claim, read, update and heartbeat a run's tasks, read the run, register a worker.
    WORK = "work"
    #: Create, list, restart, retry and delete runs; list workers.
    MANAGE = "manage"
    #: Create, list and revoke worker tokens.
    TOKENS = "tokens"


@attrs.frozen
class Caller:
    """Whoever sent a request: a user, logged in with a password or a token of theirs, or a
    worker token of a user's (`run` is then the uuid of the one run it may work on)."""

    user: User
    run: str | None = None

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def admin(self) -> bool:
        return self.user.admin and self.run is None

    def require(self, scope: Scope) -> None:
        """Raises Forbidden unless the caller's credentials allow `scope`."""
        if self.run is not None and scope is not Scope.WORK:
            raise Forbidden(
                f"a worker token only works on the tasks of run {self.run}: it lacks the "
                f"{scope.value!r} scope; log in as the user for that"
            )

    def check_run(self, run_uuid: str, owner: str | None) -> None:
        """Raises unless the caller may act on the run `run_uuid`, whose owner is `owner`:
        Forbidden for a worker token of another run, RunNotFound for another user's run,
        exactly as for a run that does not exist, so that nobody learns which runs do."""
        if self.run is not None:
            if run_uuid != self.run:
                raise Forbidden(
                    f"this worker token works on run {self.run} only, not on {run_uuid}"
                )
        elif not self.admin and owner != self.username:
            raise RunNotFound(run_uuid)

    def sees(self, owner: str | None) -> bool:
        """Whether runs (or workers) of `owner` are listed for the caller."""
        return self.admin or (self.run is None and owner == self.username)
