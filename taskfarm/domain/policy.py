"""How a run treats silent workers: how long a task's lease lasts, how often it is retried."""

from __future__ import annotations

import datetime as dt

import attrs

from taskfarm.domain.values import whole_number

#: Longer leases are a mistake: a week of silence from a worker means it is gone.
MAX_LEASE_SECONDS = 7 * 24 * 3600
MAX_ATTEMPTS = 1_000_000


@attrs.frozen
class RunPolicy:
    """A run's lease and retry rules. No lease: a claimed task stays with its worker until it
    says otherwise, as long as that takes. `max_attempts`: the attempts a task gets, failed
    commands and lost leases alike. No `max_attempts`: an expired task is retried forever, a
    failed one never.
    """

    lease_seconds: int | None = None
    max_attempts: int | None = None

    @classmethod
    def from_fields(cls, lease_seconds: object = None, max_attempts: object = None) -> RunPolicy:
        return cls(
            lease_seconds=None
            if lease_seconds is None
            else whole_number("leaseSeconds", lease_seconds, 1, MAX_LEASE_SECONDS),
            max_attempts=None
            if max_attempts is None
            else whole_number("maxAttempts", max_attempts, 1, MAX_ATTEMPTS),
        )

    def lease_expiry(self, now: dt.datetime) -> dt.datetime | None:
        """When a lease taken or renewed `now` runs out; None without a lease."""
        return (
            None if self.lease_seconds is None else now + dt.timedelta(seconds=self.lease_seconds)
        )

    def out_of_attempts(self, attempts: int) -> bool:
        return self.max_attempts is not None and attempts >= self.max_attempts

    def retries_failure(self, attempts: int) -> bool:
        """Whether a task whose command failed at its `attempts`-th attempt is tried again.
        Without `max_attempts` it is not: a lost lease is retried forever, but a failure
        reported by a worker stays a failure, as the original server had it."""
        return self.max_attempts is not None and attempts < self.max_attempts
