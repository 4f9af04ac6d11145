"""The rules of runs and tasks, free of any framework or storage."""

from __future__ import annotations

from taskfarm.domain.errors import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    NotFound,
    RunNotFound,
    SchemaMismatch,
    StorageError,
    TaskFarmError,
    TaskNotFound,
    UserNotFound,
    WorkerNotFound,
)
from taskfarm.domain.limits import (
    MAX_CLAIM_COUNT,
    MAX_HOSTNAME_LENGTH,
    MAX_PID,
    MAX_TASKS,
    MAX_UUID_LENGTH,
)
from taskfarm.domain.policy import RunPolicy
from taskfarm.domain.run import (
    Claim,
    Run,
    RunCounters,
    Wanted,
    check_claim_count,
    check_num_tasks,
    next_claim,
)
from taskfarm.domain.schema import SchemaUpgrade, SchemaVersion
from taskfarm.domain.task import (
    FULL_PROGRESS,
    PROGRESS_UNITS_PER_PERCENT,
    Task,
    TaskChange,
    TaskState,
    percent_from_progress,
    progress_from_percent,
)
from taskfarm.domain.user import TokenClaims, User, check_password, check_username
from taskfarm.domain.worker import TaskHolder, Worker, WorkerRegistration, WorkerStatus

__all__ = [
    "FULL_PROGRESS",
    "MAX_CLAIM_COUNT",
    "MAX_HOSTNAME_LENGTH",
    "MAX_PID",
    "MAX_TASKS",
    "MAX_UUID_LENGTH",
    "PROGRESS_UNITS_PER_PERCENT",
    "AuthenticationFailed",
    "Claim",
    "Conflict",
    "InvalidInput",
    "NotFound",
    "Run",
    "RunCounters",
    "RunNotFound",
    "RunPolicy",
    "SchemaMismatch",
    "SchemaUpgrade",
    "SchemaVersion",
    "StorageError",
    "Task",
    "TaskChange",
    "TaskFarmError",
    "TaskHolder",
    "TaskNotFound",
    "TaskState",
    "TokenClaims",
    "User",
    "UserNotFound",
    "Wanted",
    "Worker",
    "WorkerNotFound",
    "WorkerRegistration",
    "WorkerStatus",
    "check_claim_count",
    "check_num_tasks",
    "check_password",
    "check_username",
    "next_claim",
    "percent_from_progress",
    "progress_from_percent",
]
