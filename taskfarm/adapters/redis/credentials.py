"""Worker tokens and failed logins in Redis, each under one hash tag of their own."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from taskfarm.adapters.redis import keys
from taskfarm.adapters.redis.codec import from_micros, to_micros
from taskfarm.adapters.redis.errors import storage_errors
from taskfarm.adapters.redis.scripts import Scripts
from taskfarm.domain import Conflict, FailedLogins, TokenNotFound, WorkerToken


class RedisTokenStore:
    """A hash per worker token, keyed by its digest; a hash of ids to digests, and an index of
    ids by creation, for listing and revoking."""

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    def add_token(self, token: WorkerToken, digest: str) -> None:
        fields = _token_fields(token)
        with storage_errors():
            stored = self._scripts.add_token(
                keys=[keys.token(digest), keys.TOKEN_IDS, keys.TOKEN_INDEX],
                args=[
                    token.id,
                    digest,
                    to_micros(token.created),
                    *[item for pair in fields.items() for item in pair],
                ],
            )
        if not stored:
            raise Conflict(f"there is already a token {token.id!r}")

    def token_by_digest(self, digest: str) -> WorkerToken | None:
        with storage_errors():
            fields = self._client.hgetall(keys.token(digest))
        return _token(fields) if fields else None

    def list_tokens(self, owner: str | None = None) -> Sequence[WorkerToken]:
        with storage_errors():
            ids = self._client.zrange(keys.TOKEN_INDEX, 0, -1)
            digests = self._client.hmget(keys.TOKEN_IDS, ids) if ids else []
            pipeline = self._client.pipeline(transaction=False)
            for digest in digests:
                pipeline.hgetall(keys.token(digest or ""))
            hashes = pipeline.execute()
        tokens = [_token(fields) for fields in hashes if fields]
        return [token for token in tokens if owner is None or token.owner == owner]

    def revoke_token(self, token_id: str) -> WorkerToken:
        with storage_errors():
            digest = self._client.hget(keys.TOKEN_IDS, token_id)
            fields = (
                None
                if digest is None
                else self._scripts.revoke_token(
                    keys=[keys.TOKEN_IDS, keys.TOKEN_INDEX, keys.token(digest)],
                    args=[token_id, digest],
                )
            )
        if not fields:
            raise TokenNotFound(token_id)
        pairs = iter(fields)
        return _token(dict(zip(pairs, pairs, strict=True)))


def _token_fields(token: WorkerToken) -> dict[str, str | int]:
    fields: dict[str, str | int] = {
        "id": token.id,
        "run": token.run,
        "owner": token.owner,
        "created": to_micros(token.created),
    }
    if token.expires is not None:
        fields["expires"] = to_micros(token.expires)
    if token.name is not None:
        fields["name"] = token.name
    return fields


def _token(fields: Mapping[str, str]) -> WorkerToken:
    expires = fields.get("expires")
    return WorkerToken(
        id=fields["id"],
        run=fields["run"],
        owner=fields["owner"],
        created=from_micros(int(fields["created"])),
        expires=None if expires is None else from_micros(int(expires)),
        name=fields.get("name"),
    )


class RedisLoginFailureStore:
    """A hash per username or address: its failures and when its window started."""

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    def failed_logins(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> list[FailedLogins | None]:
        with storage_errors():
            pipeline = self._client.pipeline(transaction=False)
            for key in counted_by:
                pipeline.hmget(keys.failed_logins(key), "failures", "since")
            found = pipeline.execute()
        counted = [
            None if since is None else FailedLogins(int(failures), from_micros(int(since)))
            for failures, since in found
        ]
        return [c if c is not None and c.lasts(now, window) else None for c in counted]

    def count_failed_login(
        self, counted_by: Sequence[str], now: dt.datetime, window: dt.timedelta
    ) -> None:
        with storage_errors():
            self._scripts.count_failed_login(
                keys=[keys.failed_logins(key) for key in counted_by],
                args=[to_micros(now), window // dt.timedelta(microseconds=1)],
            )

    def forget_failed_logins(self, counted_by: str) -> None:
        with storage_errors():
            self._client.delete(keys.failed_logins(counted_by))
