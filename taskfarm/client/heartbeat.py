"""Keeping the leases of held tasks while a worker is busy with something else."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import requests

from taskfarm.client.api import MAX_CLAIM_COUNT, Api
from taskfarm.client.errors import UnexpectedStatus

logger = logging.getLogger(__name__)

#: How long `close()` waits for a heartbeat in flight before leaving the daemon thread be.
CLOSE_SECONDS = 5.0
#: The run is gone: every task of it is lost.
RUN_GONE = 404


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
                # One request per beat, however many tasks are held (a claim's worth at most).
                for first in range(0, len(tasks), MAX_CLAIM_COUNT):
                    if self._stopped.is_set():
                        return
                    self._renew(tasks[first : first + MAX_CLAIM_COUNT])
        finally:
            self._api.close()

    def _renew(self, tasks: list[int]) -> None:
        try:
            lost = self._api.renew_leases(self._run_uuid, self._worker_uuid, tasks)
            why = "another worker holds it, or it is not computing"
        except UnexpectedStatus as error:
            if error.status != RUN_GONE:
                logger.warning("heartbeat of %d tasks failed: %s", len(tasks), error.detail)
                return
            lost, why = tasks, error.detail
        except requests.RequestException as error:
            # The session already retried for minutes; the next beat tries again.
            logger.warning("heartbeat of %d tasks failed: %s", len(tasks), error)
            return
        for task in lost:
            with self._lock:
                if task not in self._tasks:
                    continue  # let go of meanwhile: not lost, just no longer ours
                self._tasks.discard(task)
            logger.warning("task %d is no longer this worker's: %s", task, why)
            self._on_lost(task)


class NoHeartbeat:
    """The heartbeat of a run without leases: nothing to renew, so nothing to hold."""

    def start(self) -> None:
        pass

    def hold(self, task: int) -> None:
        pass

    def drop(self, task: int) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass


def heartbeat_for(
    api: Api,
    run_uuid: str,
    worker_uuid: str,
    interval: float | None,
    on_lost: Callable[[int], object],
) -> Heartbeat | NoHeartbeat:
    """A heartbeat every `interval` seconds, on a copy of `api`; none without an interval."""
    if interval is None:
        return NoHeartbeat()
    return Heartbeat(api.copy(), run_uuid, worker_uuid, interval, on_lost)
