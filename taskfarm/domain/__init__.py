"""The rules of runs and tasks, free of any framework or storage."""

from __future__ import annotations

from taskfarm.domain.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    RunNotFound,
    StorageError,
    TaskFarmError,
    TaskNotFound,
    UserNotFound,
    WorkerNotFound,
)
from taskfarm.domain.run import MAX_TASKS, Claim, Run, RunCounters, check_num_tasks, next_claim
from taskfarm.domain.task import (
    FULL_PROGRESS,
    PROGRESS_UNITS_PER_PERCENT,
    Task,
    TaskChange,
    TaskState,
    percent_from_progress,
    progress_from_percent,
)
from taskfarm.domain.user import User, check_password, check_username
from taskfarm.domain.worker import Worker, WorkerRegistration

__all__ = [
    "FULL_PROGRESS",
    "MAX_TASKS",
    "PROGRESS_UNITS_PER_PERCENT",
    "AuthenticationFailed",
    "Claim",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "Run",
    "RunCounters",
    "RunNotFound",
    "StorageError",
    "Task",
    "TaskChange",
    "TaskFarmError",
    "TaskNotFound",
    "TaskState",
    "User",
    "UserNotFound",
    "Worker",
    "WorkerNotFound",
    "WorkerRegistration",
    "check_num_tasks",
    "check_password",
    "check_username",
    "next_claim",
    "percent_from_progress",
    "progress_from_percent",
]
