"""How domain objects look in JSON: the field names the published client relies on."""

from __future__ import annotations

from typing import Any

from taskfarm.domain import Run, Task, Worker


def run_summary(run: Run) -> dict[str, Any]:
    return {"id": run.id, "uuid": run.uuid, "numTasks": run.num_tasks}


def run_info(run: Run) -> dict[str, Any]:
    return {**run_summary(run), **run_progress(run)}


def run_progress(run: Run) -> dict[str, Any]:
    return {
        "percentDone": run.percent_done,
        "numWaiting": run.num_waiting,
        "numDone": run.num_done,
        "numComputing": run.num_computing,
    }


def task_info(task: Task) -> dict[str, Any]:
    # A task's id is its index in the run: the same number the task URLs use.
    return {
        "id": task.index,
        "task": task.index,
        "percentCompleted": task.percent_completed,
        "status": task.state.value,
    }


def worker_summary(worker: Worker) -> dict[str, Any]:
    return {"uuid": worker.uuid, "id": worker.id}
