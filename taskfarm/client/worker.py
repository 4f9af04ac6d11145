"""A worker: claims the tasks of a run and reports on them, as the published client's
`TaskFarmWorker` does, keeping their leases meanwhile."""

from __future__ import annotations

import collections
import contextlib
import logging
import traceback
import weakref
from collections.abc import Iterator
from typing import Any
from uuid import uuid1

from taskfarm.client.api import DEFAULT_URL_BASE, MAX_CLAIM_COUNT, Claim
from taskfarm.client.error_tail import ErrorTail
from taskfarm.client.errors import TaskLost
from taskfarm.client.heartbeat import heartbeat_for, interval_for
from taskfarm.client.run import TaskFarm
from taskfarm.client.session import DEFAULT_RETRIES, Retries

logger = logging.getLogger(__name__)

#: Within this of 100, a percentage counts as complete (the published client's tolerance).
COMPLETE_TOLERANCE = 1e-6


class TaskFarmWorker(TaskFarm):
    """Works through the tasks of run `uuid`, one at a time:

        with TaskFarmWorker(user, password, run_uuid, url_base=...) as worker:
            for task in worker.tasks:
                with worker.attempt():  # done if the block ends, failed if it raises
                    ...                 # compute task number `task`

    or, as with the published client, `worker.update(100.0)` then `worker.done()`. In a batch
    script, `TaskFarmWorker(uuid=run_uuid, url_base=...)` logs in with the worker token in
    TASKFARM_TOKEN (or `token=`) instead of a password.

    Works as the published client's `TaskFarmWorker`, and besides:

    - keeps the leases of the tasks it holds with heartbeats from a background thread, every
      third of the run's lease (`heartbeat=True`), every `heartbeat` seconds, or never
      (`heartbeat=False`); a run without a lease gets none unless given an interval;
    - names itself in its updates, so that after losing a task (its lease ran out and another
      worker took it) `update()` and `done()` raise `TaskLost` instead of overwriting the other
      worker's progress; catch it to go on with the next task;
    - `attempt()` marks the current task done when its block ends, and failed, with the
      traceback as its error, when it raises; `fail(error)` says so itself; `done()` marks
      the task done at 100% whatever progress was reported;
    - `release()` hands the current task back to the run, to be claimed again;
    - `batch=k` claims k tasks per request and hands them out one by one; `release_all()` and
      `close()` (or the end of a `with` block) hand back those not finished.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        uuid: str | None = None,
        url_base: str = DEFAULT_URL_BASE,
        *,
        batch: int = 1,
        heartbeat: float | bool = True,
        token: str | None = None,
        retries: Retries = DEFAULT_RETRIES,
    ) -> None:
        if uuid is None:
            raise TypeError("a worker works on a run: give its uuid (or name) as uuid")
        if not 1 <= batch <= MAX_CLAIM_COUNT:
            raise ValueError(f"batch must be between 1 and {MAX_CLAIM_COUNT}, not {batch}")
        TaskFarm.__init__(
            self, username, password, uuid=uuid, url_base=url_base, token=token, retries=retries
        )
        self._batch = batch
        self._task: int | None = None
        self._input: Any = None
        self._percentageDone: float | None = None
        self._unstarted: collections.deque[Claim] = collections.deque()
        # Filled by the heartbeat thread: tasks another worker has taken.
        self._lost: set[int] = set()
        self._closed = False
        try:
            self._worker_uuid: str = self._api.register_worker(uuid1().hex)["uuid"]
        except BaseException:
            self._api.close()
            raise
        interval = _interval(heartbeat, self._info.get("leaseSeconds"))
        self._heartbeat = heartbeat_for(
            self._api, self.uuid, self._worker_uuid, interval, self._lost.add
        )
        self._heartbeat.start()
        # A worker dropped without close() must not keep its tasks' leases for ever.
        weakref.finalize(self, self._heartbeat.stop)

    def __enter__(self) -> TaskFarmWorker:
        return self

    @property
    def worker_uuid(self) -> str:
        """Sent with the worker's updates, so that the server refuses them once another
        worker has its task."""
        return self._worker_uuid

    @property
    def task(self) -> int | None:
        """The task the worker holds, claiming the next one if it holds none; None when the
        run has no task left to hand out."""
        if self._task is None:
            self._percentageDone = None
            claim = self._next_claim()
            if claim is None:
                return None
            self._task = claim.task
            self._input = claim.input
            self._percentageDone = claim.percent_completed
        return self._task

    @property
    def input(self) -> Any:
        """The input of the current task (claiming one if the worker holds none), when its run
        has inputs: a string (a line), a JSON value, or a sweep's `{name: value}`; None
        otherwise."""
        return self._input if self.task is not None else None

    @property
    def tasks(self) -> Iterator[int]:
        """The remaining tasks, one after the other: call `done()` (or `release()`) on each."""
        while (task := self.task) is not None:
            yield task

    def update(self, percentage: float) -> None:
        """Reports how far the current task has got, from 0 to 100; renews its lease."""
        if self._task is None:
            return
        if percentage < 0 or percentage > 100:
            raise ValueError(f"percentage {percentage} out of range")
        self._percentageDone = percentage
        self.setTaskInfo(self._task, "percentCompleted", percentage)

    def done(self) -> None:
        """Marks the current task done, at 100%, and lets go of it. (The published client
        marked it done only once its progress read 100%, and otherwise left it computing,
        for ever without a lease.)"""
        if self._task is None:
            return
        if self._percentageDone is None or abs(self._percentageDone - 100) >= COMPLETE_TOLERANCE:
            self.update(100.0)
        self.setTaskInfo(self._task, "status", "done")
        self._let_go(self._task)

    def fail(self, error: str | None = None, exit_code: int | None = None) -> None:
        """Reports the current task's attempt failed, with what went wrong (its last 4 KiB
        are kept), and lets go of it: it is tried again while the run allows more attempts,
        else it is failed."""
        if self._task is None:
            return
        fields: dict[str, object] = {"status": "failed"}
        if error is not None:
            tail = ErrorTail()
            tail.add(error.encode())
            fields["error"] = tail.text()
        if exit_code is not None:
            fields["exitCode"] = exit_code
        task = self._task
        try:
            self._api.update_task(self.uuid, task, {**fields, "worker_uuid": self._worker_uuid})
        finally:
            self._let_go(task)

    @contextlib.contextmanager
    def attempt(self) -> Iterator[int | None]:
        """An attempt at the current task (claiming one if none is held): done when the block
        ends, failed with the traceback as its error when it raises an exception (which is
        logged, not raised again, so that a loop goes on with the next task); handed back,
        and raised again, on KeyboardInterrupt and the like. Yields the task's index, or
        None when the run has no task left."""
        task = self.task
        try:
            yield task
        except Exception:
            logger.exception("task %s failed", task)
            self.fail(traceback.format_exc())
        except BaseException:
            self.release()
            raise
        else:
            self.done()

    def release(self) -> None:
        """Hands the current task back to the run, keeping its progress; it is claimed again
        before tasks nobody has started."""
        if self._task is not None:
            self._hand_back(self._task)

    def release_all(self) -> None:
        """Hands back the current task and the claimed ones not started yet."""
        self.release()
        while self._unstarted:
            self._hand_back(self._unstarted.popleft().task)

    def close(self) -> None:
        """Hands back every task not finished, stops the heartbeats and closes connections."""
        if self._closed:
            return
        self._closed = True
        try:
            self.release_all()
        finally:
            self._heartbeat.close()
            TaskFarm.close(self)

    def setTaskInfo(self, task: int, info: str, value: object) -> None:  # noqa: N802 (the published client's name)
        """Sets one item of a task: `'percentCompleted'` or `'status'`. On a task the worker
        holds it names the worker, and raises `TaskLost` if another worker has it now."""
        self._check_task(task)
        fields: dict[str, object] = {info: value}
        held = self._holds(task)
        if held:
            fields["worker_uuid"] = self._worker_uuid
        try:
            self._api.update_task(self.uuid, task, fields)
        except TaskLost:
            self._let_go(task)
            raise
        if held and info == "status" and value != "computing":
            # Not computing any more, the task has no lease to keep.
            self._heartbeat.drop(task)

    def _next_claim(self) -> Claim | None:
        while True:
            while self._unstarted:
                claim = self._unstarted.popleft()
                if claim.task not in self._lost:
                    return claim
            claims = self._claim()
            if not claims:
                return None
            self._unstarted.extend(claims)

    def _claim(self) -> list[Claim]:
        if self._batch == 1:
            # The route every taskfarm server has, old ones included.
            claim = self._api.claim_one(self.uuid, self._worker_uuid)
            claims = [] if claim is None else [claim]
        else:
            claims = self._api.claim(self.uuid, self._worker_uuid, self._batch)
        for claim in claims:
            self._lost.discard(claim.task)
            self._heartbeat.hold(claim.task)
        return claims

    def _holds(self, task: int) -> bool:
        # A task the heartbeats found lost is still named as held, so that the server refuses
        # the update (409) instead of letting it overwrite the new holder's progress.
        return task == self._task or any(claim.task == task for claim in self._unstarted)

    def _hand_back(self, task: int) -> None:
        try:
            self._api.update_task(
                self.uuid, task, {"status": "waiting", "worker_uuid": self._worker_uuid}
            )
        except TaskLost:
            logger.info("task %d was taken by another worker already", task)
        self._let_go(task)

    def _let_go(self, task: int) -> None:
        self._heartbeat.drop(task)
        if task == self._task:
            self._task = None


def _interval(heartbeat: float | bool, lease_seconds: int | None) -> float | None:
    if heartbeat is True:
        return interval_for(lease_seconds)
    if heartbeat is False:
        return None
    if heartbeat <= 0:
        raise ValueError(f"heartbeat must be a number of seconds above 0, not {heartbeat}")
    return float(heartbeat)
