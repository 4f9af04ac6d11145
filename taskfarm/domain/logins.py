"""Failed logins, counted so that someone guessing passwords is stopped before each guess
costs the server a run of its deliberately slow KDF."""

from __future__ import annotations

import datetime as dt
import math

import attrs

MAX_COUNTED_BY_LENGTH = 128
#: Failed logins are counted in windows this long, from the first failure of each.
LOGIN_WINDOW = dt.timedelta(minutes=5)
#: Failed logins of one username in a window: a person mistyping stays well within it.
PER_USERNAME = 10
#: Failed logins from one client address in a window, for any usernames: several people may
#: share an address (a cluster's login node, a NAT).
PER_ADDRESS = 50


def by_username(username: str) -> str:
    return "user:" + username[: MAX_COUNTED_BY_LENGTH - len("user:")]


def by_address(address: str) -> str:
    return "address:" + address[: MAX_COUNTED_BY_LENGTH - len("address:")]


@attrs.frozen
class FailedLogins:
    """The failed logins counted by one key since `since`, the start of its window."""

    failures: int
    since: dt.datetime

    @classmethod
    def one_more(cls, known: FailedLogins | None, now: dt.datetime) -> FailedLogins:
        """The failures once one more is counted at `now` (as `LoginFailureStore` counts)."""
        if known is None or not known.lasts(now):
            return cls(1, now)
        return cls(known.failures + 1, known.since)

    def lasts(self, now: dt.datetime, window: dt.timedelta = LOGIN_WINDOW) -> bool:
        """Whether the window of these failures has not ended by `now`."""
        return now < self.since + window

    def retry_after(self, most: int, now: dt.datetime) -> int | None:
        """Whole seconds until a login may be tried again, past `most` failures in the
        window; None if one may be tried now."""
        if self.failures < most or not self.lasts(now):
            return None
        return max(1, math.ceil((self.since + LOGIN_WINDOW - now).total_seconds()))
