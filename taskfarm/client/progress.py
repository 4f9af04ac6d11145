"""Progress that commands print, and sending it to the server without flooding it."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

import requests

from taskfarm.client.api import Api
from taskfarm.client.errors import TaskLost, UnexpectedStatus

logger = logging.getLogger(__name__)

#: A line a command prints to report progress: `TASKFARM_PROGRESS 42.5` (a `%` may follow).
PROGRESS_LINE = re.compile(rb"\s*TASKFARM_PROGRESS\s+([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*%?\s*")

#: Seconds between two progress reports, whatever the commands print.
MIN_INTERVAL = 0.2


def parse_progress(line: bytes) -> float | None:
    """The percentage a progress line reports, or None for any other line (and for
    percentages above 100, which are not progress)."""
    match = PROGRESS_LINE.fullmatch(line)
    if match is None:
        return None
    percent = float(match.group(1))
    return percent if percent <= 100 else None


class ProgressReporter:
    """Once started, sends the latest percentage of each task to the server from a thread of
    its own, at
    most one request every `min_interval` seconds: a command printing progress in a tight
    loop costs the server a few requests a second, and the last value always gets through.

    A task the server says another worker holds is handed to `on_lost`, from that thread.
    """

    def __init__(
        self,
        api: Api,
        run_uuid: str,
        worker_uuid: str,
        on_lost: Callable[[int], object],
        min_interval: float = MIN_INTERVAL,
    ) -> None:
        self._api = api
        self._run_uuid = run_uuid
        self._worker_uuid = worker_uuid
        self._on_lost = on_lost
        self._min_interval = min_interval
        self._pending: dict[int, float] = {}
        self._sending: int | None = None
        self._closed = threading.Event()
        self._changed = threading.Condition()
        self._thread = threading.Thread(
            target=self._send_all, name="taskfarm-progress", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def report(self, task: int, percent: float) -> None:
        with self._changed:
            self._pending[task] = percent
            self._changed.notify_all()

    def settle(self, task: int) -> float | None:
        """Stops reporting on `task` and returns its latest percentage not sent yet.

        Waits for a report on it already in flight, so that no report arrives at the server
        after the caller's last word on the task (done, or handed back).
        """
        with self._changed:
            self._changed.wait_for(lambda: self._sending != task)
            return self._pending.pop(task, None)

    def close(self) -> None:
        """Sends what is in flight, drops the rest, and closes the session."""
        self._closed.set()
        with self._changed:
            self._changed.notify_all()
        if self._thread.ident is None:
            self._api.close()  # never started: the thread would have closed it
        else:
            self._thread.join()

    def _send_all(self) -> None:
        try:
            while True:
                with self._changed:
                    self._changed.wait_for(lambda: bool(self._pending) or self._closed.is_set())
                    if self._closed.is_set():
                        return
                    # The task waiting longest goes first: dicts keep insertion order.
                    task = next(iter(self._pending))
                    percent = self._pending.pop(task)
                    self._sending = task
                try:
                    self._send(task, percent)
                finally:
                    with self._changed:
                        self._sending = None
                        self._changed.notify_all()
                self._closed.wait(self._min_interval)
        finally:
            self._api.close()

    def _send(self, task: int, percent: float) -> None:
        fields = {"percentCompleted": percent, "worker_uuid": self._worker_uuid}
        try:
            self._api.update_task(self._run_uuid, task, fields)
        except TaskLost:
            self._on_lost(task)
        except (UnexpectedStatus, requests.RequestException) as error:
            logger.warning("could not report the progress of task %d: %s", task, error)
