"""Claims awaited on the event loop with redis-py's asyncio client, with no worker thread.

A trip to a worker thread and back costs a claim request more CPU than the claim script's
round trip to Redis. An asyncio client belongs to the event loop it first ran on: each loop
gets its own, closed by `leave`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from taskfarm.adapters.redis import scripts
from taskfarm.adapters.redis.errors import TIMEOUT_SECONDS, storage_errors


@attrs.frozen
class _LoopClient:
    client: Any
    claim: Any


class LoopClaims:
    """The claim script, called through an asyncio client of the running event loop; each call
    fails after `TIMEOUT_SECONDS`, its connection and reply included."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
            weakref.WeakKeyDictionary()
        )

    async def claim(self, keys: Sequence[str], args: Sequence[str]) -> Any:
        with storage_errors():
            async with asyncio.timeout(TIMEOUT_SECONDS):
                return await self._current().claim(keys=keys, args=args)

    def _current(self) -> _LoopClient:
        loop = asyncio.get_running_loop()
        current = self._clients.get(loop)
        if current is None:
            client = self._connect()
            current = _LoopClient(client, client.register_script(scripts.source("claim")))
            self._clients[loop] = current
        return current

    async def leave(self) -> None:
        """Closes the client of the running event loop, if it has one."""
        current = self._clients.pop(asyncio.get_running_loop(), None)
        if current is not None:
            await current.client.aclose()
