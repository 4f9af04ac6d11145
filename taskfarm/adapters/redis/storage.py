from __future__ import annotations

import functools
from typing import Any

import redis
import redis.asyncio
from redis.cluster import RedisCluster

from taskfarm.adapters.redis.accounts import RedisKeyStore, RedisUserStore, RedisWorkerStore
from taskfarm.adapters.redis.credentials import RedisLoginFailureStore, RedisTokenStore
from taskfarm.adapters.redis.errors import TIMEOUT_SECONDS, storage_errors
from taskfarm.adapters.redis.loop_claims import LoopClaims
from taskfarm.adapters.redis.run_store import RedisRunStore
from taskfarm.adapters.redis.scripts import Scripts

CLUSTER_SCHEME = "redis+cluster://"


_OPTIONS: dict[str, Any] = {
    "decode_responses": True,
    "socket_timeout": TIMEOUT_SECONDS,
    "socket_connect_timeout": TIMEOUT_SECONDS,
}


def connect(url: str) -> Any:
    """A client for `redis://` or `rediss://` URLs, or a cluster client for `redis+cluster://`."""
    if url.startswith(CLUSTER_SCHEME):
        return RedisCluster.from_url("redis://" + url.removeprefix(CLUSTER_SCHEME), **_OPTIONS)
    return redis.Redis.from_url(url, **_OPTIONS)


#: The asyncio client's calls are bounded by `LoopClaims` as a whole: a socket timeout would
#: make redis-py wrap every write in `asyncio.wait_for`, a task of its own per call.
_LOOP_OPTIONS = {**_OPTIONS, "socket_timeout": None}


def connect_asyncio(url: str) -> Any:
    """The asyncio client of the same server or cluster as `connect(url)`, without a socket
    timeout: its caller bounds each call."""
    if url.startswith(CLUSTER_SCHEME):
        return redis.asyncio.RedisCluster.from_url(
            "redis://" + url.removeprefix(CLUSTER_SCHEME), **_LOOP_OPTIONS
        )
    return redis.asyncio.Redis.from_url(url, **_LOOP_OPTIONS)


class RedisStorage:
    """Everything in one Redis server or Redis Cluster."""

    def __init__(self, client: Any, loop_claims: LoopClaims) -> None:
        self._client = client
        self._loop_claims = loop_claims
        scripts = Scripts.register(client)
        self.runs = RedisRunStore(client, scripts, loop_claims)
        self.workers = RedisWorkerStore(client, scripts)
        self.users = RedisUserStore(client, scripts)
        self.keys = RedisKeyStore(client)
        self.tokens = RedisTokenStore(client, scripts)
        self.logins = RedisLoginFailureStore(client, scripts)

    @classmethod
    def from_url(cls, url: str) -> RedisStorage:
        with storage_errors():
            return cls(connect(url), LoopClaims(functools.partial(connect_asyncio, url)))

    def create_schema(self) -> None:
        """Redis needs no schema; checks that the server answers, to fail early."""
        with storage_errors():
            self._client.ping()

    def upgrade_schema(self) -> None:
        """Redis keeps no schema to upgrade; checks that the server answers, as creating does."""
        self.create_schema()

    def ping(self) -> None:
        with storage_errors():
            self._client.ping()

    async def leave_loop(self) -> None:
        await self._loop_claims.leave()

    def close(self) -> None:
        self._client.close()
