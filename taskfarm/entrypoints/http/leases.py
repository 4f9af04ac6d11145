"""The sweep that hands back the tasks of silent workers, in every server process."""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio
from starlette.concurrency import run_in_threadpool

from taskfarm.domain import StorageError
from taskfarm.service import FarmService

logger = logging.getLogger(__name__)

#: Run info counts an expired task as waiting within about this long, claimed or not.
SWEEP_SECONDS = 1.0


async def sweep_leases(
    taskfarm: FarmService, count_expired: Callable[[int], None], interval: float = SWEEP_SECONDS
) -> None:
    """Expires leases every `interval` seconds until cancelled, telling `count_expired` how
    many each sweep expired. Every server process sweeps: the store makes each expiry atomic,
    so concurrent sweeps hand each task back once."""
    while True:
        await anyio.sleep(interval)
        try:
            expired = await run_in_threadpool(taskfarm.expire_leases)
        except StorageError as error:
            logger.warning("could not expire leases: %s", error)
            continue
        count_expired(expired)
        if expired:
            logger.info("handed back %d task(s) whose lease ran out", expired)
