"""Worker tokens: what a batch script carries instead of a password. Each works on the tasks
of one run, until it expires or its owner revokes it."""

from __future__ import annotations

import datetime as dt
import hashlib
import re

import attrs

from taskfarm.domain.errors import InvalidInput
from taskfarm.domain.names import MAX_NAME_LENGTH, NAME_PATTERN

#: Every worker token starts so: it tells them from the signed tokens of users, and a secret
#: scanner (GitHub's, say) from other strings.
WORKER_TOKEN_PREFIX = "tfw_"
MAX_TOKEN_ID_LENGTH = 16
MAX_TOKEN_LIFETIME = dt.timedelta(days=366)

_NAME = re.compile(NAME_PATTERN)


def check_token_name(name: object) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"a token name has 1 to {MAX_NAME_LENGTH} letters, digits, '.', '_' or '-' and "
            f"starts with a letter or digit, not {name!r:.80}"
        )
    return name


def check_token_lifetime(seconds: object) -> dt.timedelta:
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int)
        or not 0 < seconds <= MAX_TOKEN_LIFETIME.total_seconds()
    ):
        raise InvalidInput(
            f"a token expires 1 to {int(MAX_TOKEN_LIFETIME.total_seconds())} seconds after it "
            f"is made, not {seconds!r:.40}"
        )
    return dt.timedelta(seconds=seconds)


def is_worker_token(secret: str) -> bool:
    return secret.startswith(WORKER_TOKEN_PREFIX)


def token_digest(secret: str) -> str:
    """What is stored of a worker token. A token holds 256 random bits, so a plain hash is as
    safe as a slow KDF would be, and costs a microsecond on every request."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


@attrs.frozen
class WorkerToken:
    """A worker token as stored, without its secret: it works on the tasks of `run` (a uuid)
    for `owner`, until `expires` (None: never)."""

    id: str
    run: str
    owner: str
    created: dt.datetime
    expires: dt.datetime | None = None
    name: str | None = None

    def expired(self, now: dt.datetime) -> bool:
        return self.expires is not None and now >= self.expires
