"""Keeping the leases of held tasks while a worker is busy with something else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import requests

from taskfarm.client.api import Api
from taskfarm.client.errors import UnexpectedStatus

logger = logging.getLogger(__name__)

#: How long `close()` waits for a heartbeat in flight before leaving the daemon thread be.
CLOSE_SECONDS = 5.0
#: Another worker holds the task (409), or its run is gone (404).
LOST_STATUSES = (404, 409)


def interval_for(lease_seconds: int | None) -> float | None:
    """Three heartbeats per lease: a lost or late one leaves two more before the lease ends.
    None, for no heartbeats, when the run has no lease to keep."""
    return None if lease_seconds is None else lease_seconds / 3


class Heartbeat:
    """Once started, renews the lease of every task it holds every `interval` seconds, from a
    daemon thread with a session of its own, so that a worker computing one task for longer
    than the lease keeps it without reporting progress.

    A task the server says is gone (another worker has it, or the run was deleted) is dropped
    and handed to `on_lost`, called from the heartbeat thread.
    """

    def __init__(
        self,
        api: Api,
        run_uuid: str,
        worker_uuid: str,
        interval: float,
        on_lost: Callable[[int], object] = lambda task: None,
    ) -> None:
        self._api = api
        self._run_uuid = run_uuid
        self._worker_uuid = worker_uuid
        self._interval = interval
        self._on_lost = on_lost
        self._tasks: set[int] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._thread = threading.Thread(
            target=self._beat, name=f"taskfarm-heartbeat-{run_uuid[:8]}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def hold(self, task: int) -> None:
        with self._lock:
            self._tasks.add(task)

    def drop(self, task: int) -> None:
        with self._lock:
            self._tasks.discard(task)

    def holds(self, task: int) -> bool:
        with self._lock:
            return task in self._tasks

    def stop(self) -> None:
        """Stops the heartbeats without waiting for the one in flight, if any."""
        self._stopped.set()

    def close(self) -> None:
        """Stops the heartbeats; their session closes once the one in flight, if any, ends."""
        self.stop()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(CLOSE_SECONDS)
        elif self._thread.ident is None:
            self._api.close()  # never started: the thread would have closed it

    def _beat(self) -> None:
        try:
            while not self._stopped.wait(self._interval):
                with self._lock:
                    tasks = sorted(self._tasks)
                for task in tasks:
                    if self._stopped.is_set():
                        return
                    if self.holds(task):
                        self._renew(task)
        finally:
            self._api.close()

    def _renew(self, task: int) -> None:
        try:
            self._api.heartbeat(self._run_uuid, task, self._worker_uuid)
        except UnexpectedStatus as error:
            if error.status not in LOST_STATUSES:
                logger.warning("heartbeat of task %d failed: %s", task, error.detail)
                return
            with self._lock:
                if task not in self._tasks:
                    return  # let go of meanwhile: not lost, just no longer ours
                self._tasks.discard(task)
            logger.warning("task %d is no longer this worker's: %s", task, error.detail)
            self._on_lost(task)
        except requests.RequestException as error:
            # The session already retried for minutes; the next beat tries again.
            logger.warning("heartbeat of task %d failed: %s", task, error)
