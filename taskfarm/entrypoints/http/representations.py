"""How domain objects look in JSON: the field names the published client relies on, and the
fields added since, which it ignores."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Any

from taskfarm.domain import Attempt, Run, Task, TaskReport, Worker, WorkerStatus, WorkerToken


def run_summary(run: Run) -> dict[str, Any]:
    return {
        "id": run.id,
        "uuid": run.uuid,
        "numTasks": run.num_tasks,
        "name": run.name,
        "created": _timestamp(run.created),
        "owner": run.owner,
    }


def run_info(run: Run) -> dict[str, Any]:
    """A run's information; `inputs` says the kind of a run that has inputs."""
    info = {
        **run_summary(run),
        **run_progress(run),
        "leaseSeconds": run.policy.lease_seconds,
        "maxAttempts": run.policy.max_attempts,
    }
    if run.inputs is not None:
        info["inputs"] = run.inputs.value
    return info


def run_progress(run: Run) -> dict[str, Any]:
    return {
        "percentDone": run.percent_done,
        "numWaiting": run.num_waiting,
        "numDone": run.num_done,
        "numComputing": run.num_computing,
        "numFailed": run.num_failed,
    }


def task_info(task: Task, inputs: Sequence[Any] | None = None) -> dict[str, Any]:
    """A task; with its input, `inputs[0]`, when its run has inputs (`inputs` is then one
    long): the tasks of other runs look as they always did."""
    # A task's id is its index in the run: the same number the task URLs use.
    info = {
        "id": task.index,
        "task": task.index,
        "percentCompleted": task.percent_completed,
        "status": task.state.value,
        "attempts": task.attempts,
        "leaseExpires": _timestamp(task.lease_expires),
    }
    if inputs is not None:
        [info["input"]] = inputs
    return info


def task_report(
    report: TaskReport, workers: Mapping[str, Worker | None], inputs: Sequence[Any] | None = None
) -> dict[str, Any]:
    """A task as a listing shows it: where it is, who computes it, how its last attempt
    ended, and its input (`inputs[0]`) when its run has inputs; host names are those its
    workers registered with."""
    task = report.task
    shown = {
        "task": task.index,
        "status": task.state.value,
        "percentCompleted": task.percent_completed,
        "attempts": task.attempts,
        "worker": task.worker,
        "hostname": _hostname(task.worker, workers),
        "started": _timestamp(task.started),
        "leaseExpires": _timestamp(task.lease_expires),
        "lastAttempt": None
        if report.last_attempt is None
        else attempt_info(report.last_attempt, workers),
    }
    if inputs:
        [shown["input"]] = inputs
    return shown


def attempt_info(attempt: Attempt, workers: Mapping[str, Worker | None]) -> dict[str, Any]:
    return {
        "outcome": attempt.outcome.value,
        "worker": attempt.worker,
        "hostname": _hostname(attempt.worker, workers),
        "started": _timestamp(attempt.started),
        "ended": _timestamp(attempt.ended),
        "exitCode": attempt.exit_code,
        "error": attempt.error,
    }


def _hostname(worker_uuid: str | None, workers: Mapping[str, Worker | None]) -> str | None:
    worker = None if worker_uuid is None else workers.get(worker_uuid)
    return None if worker is None else worker.hostname


def worker_summary(worker: Worker) -> dict[str, Any]:
    return {"uuid": worker.uuid, "id": worker.id}


def worker_status(status: WorkerStatus) -> dict[str, Any]:
    worker = status.worker
    return {
        **worker_summary(worker),
        "hostname": worker.hostname,
        "pid": worker.pid,
        "started": _timestamp(worker.started),
        "lastSeen": _timestamp(worker.last_seen),
        "tasksHeld": status.tasks_held,
    }


def worker_token(token: WorkerToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "name": token.name,
        "run": token.run,
        "owner": token.owner,
        "created": _timestamp(token.created),
        "expires": _timestamp(token.expires),
    }


def _timestamp(moment: dt.datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()
