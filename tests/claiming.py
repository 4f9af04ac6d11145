"""Claims for tests that call a store directly, from code that is not on an event loop: the
store's one claim operation through `BlockingClaims`, one per store. A test that opens a store
itself calls `leave_loops` before closing it; the stores of `storage_factory` have it called
for them."""

from __future__ import annotations

import datetime as dt
import threading
import weakref
from collections.abc import Sequence

from taskfarm.blocking import BlockingClaims
from taskfarm.domain import Task, Wanted
from taskfarm.ports import Storage

_lock = threading.Lock()
_claims: weakref.WeakKeyDictionary[Storage, BlockingClaims] = weakref.WeakKeyDictionary()


def _of(storage: Storage) -> BlockingClaims:
    with _lock:
        claims = _claims.get(storage)
        if claims is None:
            claims = _claims[storage] = BlockingClaims(storage)
        return claims


def claim_tasks(
    storage: Storage, run_uuid: str, worker_uuid: str, now: dt.datetime, count: int = 1
) -> list[Task]:
    """Up to `count` tasks, as a batch of one claim."""
    return _of(storage).claim(run_uuid, worker_uuid, now, count)


def claim_batch(
    storage: Storage, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
) -> list[list[Task]]:
    return _of(storage).claim_batch(run_uuid, wanted, now)


def leave_loops(storage: Storage) -> None:
    """Closes the event loops the claims of `storage` ran on, and what it opened there."""
    with _lock:
        claims = _claims.pop(storage, None)
    if claims is not None:
        claims.close()
