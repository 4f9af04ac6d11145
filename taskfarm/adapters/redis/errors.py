from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from taskfarm.domain import StorageError, StorageFull

#: A lost connection must fail a request in seconds (a 503), not hang it.
TIMEOUT_SECONDS = 5.0


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turns what redis-py raises into the domain's StorageError, as every store does."""
    try:
        yield
    except redis.ConnectionError as error:
        raise StorageError(f"cannot reach Redis: {error}") from error
    except TimeoutError as error:
        # Raised by the deadlines the adapter sets itself (`asyncio.timeout`), with no message.
        raise StorageError(f"Redis did not answer within {TIMEOUT_SECONDS:g} s") from error
    except redis.exceptions.OutOfMemoryError as error:
        # Redis refuses a write, script or command, before it starts: nothing was written.
        raise StorageFull(
            "Redis is at its memory limit (maxmemory): nothing of this request was written; "
            "give it more memory or delete finished runs, and try again"
        ) from error
    except redis.RedisError as error:
        raise StorageError(f"Redis failed: {error}") from error
