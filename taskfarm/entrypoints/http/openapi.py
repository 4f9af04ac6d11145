"""The OpenAPI 3.1 document of the API, generated from the routes and their docstrings.

Each endpoint's docstring holds its operation after a `---` line (Starlette's schema support);
the shared schemas below take their bounds from the domain, and every `/api/` operation gets
the authentication and the error responses that the middleware and error handlers add to it.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute
from starlette.schemas import SchemaGenerator

from taskfarm import __version__
from taskfarm.domain import (
    MAX_CLAIM_COUNT,
    MAX_ERROR_BYTES,
    MAX_PAGE_SIZE,
    MAX_TASKS,
    AttemptOutcome,
    TaskState,
)
from taskfarm.domain.attempts import MAX_EXIT_CODE, MIN_EXIT_CODE
from taskfarm.domain.inputs import AXIS_NAME_PATTERN, MAX_AXES, MAX_AXIS_VALUES, InputKind
from taskfarm.domain.limits import (
    MAX_HOSTNAME_LENGTH,
    MAX_INDICES_PER_REQUEST,
    MAX_PID,
    MAX_UUID_LENGTH,
)
from taskfarm.domain.names import NAME_PATTERN, UUID_PATTERN
from taskfarm.domain.policy import MAX_ATTEMPTS, MAX_LEASE_SECONDS
from taskfarm.domain.tokens import MAX_TOKEN_LIFETIME
from taskfarm.entrypoints.http.responses import JSONResponse

_STATES = [state.value for state in TaskState]
_ENDED = [state.value for state in TaskState if state is not TaskState.COMPUTING]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required if required is not None else list(properties),
        "additionalProperties": False,
    }


_INTEGER = {"type": "integer"}
_TIMESTAMP = {"type": ["string", "null"], "format": "date-time"}
#: Stores cannot keep NUL characters.
_NO_NUL = "^[^\\x00]*$"
_WORKER_UUID = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_UUID_LENGTH,
    "pattern": _NO_NUL,
}

# As `representations.run_summary` and `run_progress` write them.
_RUN_SUMMARY = {
    "id": _INTEGER,
    "uuid": {"type": "string"},
    "numTasks": _INTEGER,
    "name": {"type": ["string", "null"]},
    "created": {**_TIMESTAMP, "description": "null for runs made before runs kept it"},
    "owner": {
        "type": ["string", "null"],
        "description": "the user who made it; null for runs made before runs had owners, or "
        "whose owner was deleted (only admins see those)",
    },
}
_WORKER_TOKEN = {
    "id": {"type": "string", "description": "what `DELETE /api/tokens/{id}` revokes it by"},
    "name": {"type": ["string", "null"]},
    "run": {"type": "string", "description": "the uuid of the one run it works on"},
    "owner": {"type": "string"},
    "created": {"type": "string", "format": "date-time"},
    "expires": {**_TIMESTAMP, "description": "null: it never expires"},
}
_RUN_PROGRESS = {
    "percentDone": {"type": "number", "minimum": 0, "maximum": 100},
    "numWaiting": _INTEGER,
    "numDone": _INTEGER,
    "numComputing": _INTEGER,
    "numFailed": _INTEGER,
}

_NUM_TASKS = {"type": "integer", "minimum": 1, "maximum": MAX_TASKS}
_INPUTS = {
    "type": "array",
    "minItems": 1,
    "items": {"not": {"type": "null"}},
    "description": "one task per element, which is its input. More than fit in a request "
    "body are uploaded (POST /api/run/upload)",
}
_SWEEP = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": MAX_AXES,
    "propertyNames": {"pattern": AXIS_NAME_PATTERN},
    "additionalProperties": {
        "type": "array",
        "minItems": 1,
        "maxItems": MAX_AXIS_VALUES,
        "items": {"type": ["string", "number", "boolean"]},
    },
    "description": "one task per combination of the axes' values, the first axis changing "
    "slowest; each task's input is {axis: value, ...}",
}
#: What every new run may say besides its tasks.
_NEW_RUN = {
    "leaseSeconds": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": MAX_LEASE_SECONDS,
        "description": "absent or null: the server's default (TASKFARM_LEASE_SECONDS)",
    },
    "maxAttempts": {
        "type": ["integer", "null"],
        "minimum": 1,
        "maximum": MAX_ATTEMPTS,
        "description": "absent or null: no limit",
    },
    "name": {"oneOf": [{"type": "null"}, _ref("RunName")]},
}

SCHEMAS: dict[str, Any] = {
    "RunName": {
        "type": "string",
        "pattern": NAME_PATTERN,
        "not": {"pattern": UUID_PATTERN},
        "description": "what the run may be called instead of its uuid, in every URL and "
        "command; unique",
    },
    "Error": {
        "type": "object",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    "Token": _object({"token": {"type": "string"}}),
    "NewWorkerToken": _object(
        {
            "run": {"type": "string", "description": "the uuid or name of a run of yours"},
            "name": {"oneOf": [{"type": "null"}, _ref("RunName")]},
            "expiresSeconds": {
                "type": ["integer", "null"],
                "minimum": 1,
                "maximum": int(MAX_TOKEN_LIFETIME.total_seconds()),
                "description": "absent or null: it never expires (until revoked)",
            },
        },
        required=["run"],
    ),
    "WorkerToken": _object(_WORKER_TOKEN),
    "IssuedWorkerToken": _object(
        {
            **_WORKER_TOKEN,
            "token": {
                "type": "string",
                "description": "the token itself, shown this once: log in with it as the "
                "username and an empty password, or set TASKFARM_TOKEN",
            },
        }
    ),
    "WorkerTokens": _object({"data": {"type": "array", "items": _ref("WorkerToken")}}),
    "NewRun": {
        "description": "numTasks, inputs or sweep: one of them",
        "oneOf": [
            _object({"numTasks": _NUM_TASKS, **_NEW_RUN}, required=["numTasks"]),
            _object({"inputs": _INPUTS, **_NEW_RUN}, required=["inputs"]),
            _object({"sweep": _SWEEP, **_NEW_RUN}, required=["sweep"]),
        ],
    },
    "RunSummary": _object(_RUN_SUMMARY),
    "Runs": _object({"data": {"type": "array", "items": _ref("RunListed")}}),
    "RunListed": _object({**_RUN_SUMMARY, **_RUN_PROGRESS}),
    "RunInfo": _object(
        {
            **_RUN_SUMMARY,
            **_RUN_PROGRESS,
            "leaseSeconds": {"type": ["integer", "null"]},
            "maxAttempts": {"type": ["integer", "null"]},
            "inputs": {"enum": [kind.value for kind in InputKind]},
        },
        required=[*_RUN_SUMMARY, *_RUN_PROGRESS, "leaseSeconds", "maxAttempts"],
    ),
    "RunInfoItem": {
        "description": "One item of the run's information, as chosen by `info`.",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
    },
    "Task": _object(
        {
            "id": {"type": "integer", "description": "the task's index, as in its URL"},
            "task": {"type": "integer", "description": "the task's index"},
            "percentCompleted": {"type": "number", "minimum": 0, "maximum": 100},
            "status": {"enum": _STATES},
            "attempts": _INTEGER,
            "leaseExpires": _TIMESTAMP,
            "input": {"description": "the task's input, only for a run that has inputs"},
        },
        required=["id", "task", "percentCompleted", "status", "attempts", "leaseExpires"],
    ),
    "TaskInfoItem": {
        "description": "One item of the task's information, as chosen by `info`.",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
    },
    "Tasks": _object({"tasks": {"type": "array", "items": _ref("Task"), "minItems": 1}}),
    "Exchange": _object(
        {
            "tasks": {"type": "array", "items": _ref("Task")},
            "lost": {
                "type": "array",
                "items": _INTEGER,
                "description": "tasks reported done that another worker holds now",
            },
        }
    ),
    "TaskUpdate": {
        **_object(
            {
                "percentCompleted": {"type": "number", "minimum": 0, "maximum": 100},
                "status": {"enum": _STATES},
                "worker_uuid": {"type": "string"},
                "exitCode": {
                    "type": "integer",
                    "minimum": MIN_EXIT_CODE,
                    "maximum": MAX_EXIT_CODE,
                    "description": "how the command of the attempt this update ends exited; "
                    "only with a status other than computing",
                },
                "error": {
                    "type": "string",
                    "pattern": _NO_NUL,
                    "description": f"the last lines of the command's error output, at most "
                    f"{MAX_ERROR_BYTES} bytes of UTF-8; only with a status other than computing",
                },
            },
            required=[],
        ),
        "anyOf": [{"required": ["percentCompleted"]}, {"required": ["status"]}],
        # How a command went is told with the status its attempt ends with.
        "dependentSchemas": {
            field: {"required": ["status"], "properties": {"status": {"enum": _ENDED}}}
            for field in ("exitCode", "error")
        },
    },
    "Attempt": _object(
        {
            "outcome": {"enum": [outcome.value for outcome in AttemptOutcome]},
            "worker": {"type": ["string", "null"]},
            "hostname": {"type": ["string", "null"]},
            "started": _TIMESTAMP,
            "ended": _TIMESTAMP,
            "exitCode": {"type": ["integer", "null"]},
            "error": {"type": ["string", "null"]},
        }
    ),
    "TaskReport": _object(
        {
            "task": {"type": "integer", "description": "the task's index"},
            "status": {"enum": _STATES},
            "percentCompleted": {"type": "number", "minimum": 0, "maximum": 100},
            "attempts": _INTEGER,
            "worker": {"type": ["string", "null"]},
            "hostname": {"type": ["string", "null"]},
            "started": _TIMESTAMP,
            "leaseExpires": _TIMESTAMP,
            "lastAttempt": {
                "oneOf": [_ref("Attempt"), {"type": "null"}],
                "description": "how the task's last attempt ended; null for a task whose "
                "attempts all succeeded, or that never ended one",
            },
            "input": {"description": "the task's input, only for a run that has inputs"},
        },
        required=[
            "task",
            "status",
            "percentCompleted",
            "attempts",
            "worker",
            "hostname",
            "started",
            "leaseExpires",
            "lastAttempt",
        ],
    ),
    "TaskPage": _object(
        {
            "tasks": {"type": "array", "items": _ref("TaskReport"), "maxItems": MAX_PAGE_SIZE},
            "next": {
                "type": ["integer", "null"],
                "description": "pass as `after` for the next page; null after the last",
            },
        }
    ),
    "Retry": {
        "oneOf": [
            _object({"status": {"const": "failed"}}),
            _object(
                {
                    "tasks": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0, "maximum": MAX_TASKS - 1},
                        "minItems": 1,
                        "maxItems": MAX_INDICES_PER_REQUEST,
                    }
                }
            ),
        ]
    },
    "Retried": _object({"retried": _INTEGER}),
    "Claim": _object({"worker_uuid": {"type": "string"}}),
    "BatchClaim": _object(
        {
            "worker_uuid": {"type": "string"},
            "count": {"type": "integer", "minimum": 0, "maximum": MAX_CLAIM_COUNT},
            "done": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0, "maximum": MAX_TASKS - 1},
                "maxItems": MAX_CLAIM_COUNT,
            },
        },
        required=["worker_uuid"],
    ),
    "Heartbeat": _object({"worker_uuid": {"type": "string"}}, required=[]),
    "Heartbeats": _object(
        {
            "worker_uuid": {"type": "string"},
            "tasks": {"type": "array", "items": _INTEGER, "maxItems": MAX_CLAIM_COUNT},
        }
    ),
    "LostTasks": _object(
        {
            "lost": {
                "type": "array",
                "items": _INTEGER,
                "description": "tasks another worker holds now, or no longer computing",
            }
        }
    ),
    "WorkerRegistration": _object(
        {
            "uuid": _WORKER_UUID,
            "hostname": {"type": "string", "maxLength": MAX_HOSTNAME_LENGTH, "pattern": _NO_NUL},
            "pid": {"type": "integer", "minimum": 0, "maximum": MAX_PID},
        }
    ),
    "WorkerSummary": _object({"uuid": {"type": "string"}, "id": _INTEGER}),
    "Workers": _object(
        {
            "data": {
                "type": "array",
                "items": _object(
                    {
                        "uuid": {"type": "string"},
                        "id": _INTEGER,
                        "hostname": {"type": "string"},
                        "pid": _INTEGER,
                        "started": _TIMESTAMP,
                        "lastSeen": _TIMESTAMP,
                        "tasksHeld": _INTEGER,
                    }
                ),
            }
        }
    ),
}


def _error(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref("Error")}}}


#: What the authentication middleware, the body limit and the error handlers may answer to
#: any `/api/` request, whatever its operation.
_API_ERRORS = {
    "400": _error("the request is malformed or breaks a rule; `detail` says which"),
    "401": _error("no credentials, or wrong ones"),
    "403": _error("a worker token, for what only its user may do, or for another run"),
    "404": _error("no such run (or not yours), task, worker, token or path"),
    "413": _error("the request body is larger than 1 MiB"),
    "429": _error("too many failed logins lately; try again after Retry-After seconds"),
    "503": _error("the database is unavailable; try again shortly"),
    "507": _error("the database is full (disk, or Redis' memory limit); nothing was written"),
}

_BASE = {
    "openapi": "3.1.0",
    "info": {
        "title": "taskfarm",
        "version": __version__,
        "description": "Hands out the tasks of embarrassingly parallel runs to workers.",
    },
    "components": {
        "schemas": SCHEMAS,
        "securitySchemes": {
            "basic": {
                "type": "http",
                "scheme": "basic",
                "description": "a username and password, or a token (a worker token, or one "
                "from GET /api/token) and an empty password",
            }
        },
    },
}


_PATH_PARAMETERS = {
    "uuid": {"name": "uuid", "in": "path", "required": True, "schema": {"type": "string"}},
    "index": {
        "name": "index",
        "in": "path",
        "required": True,
        "description": "the task's index in the run, from 0 to numTasks - 1",
        "schema": {"type": "integer", "minimum": 0},
    },
    "token_id": {"name": "token_id", "in": "path", "required": True, "schema": {"type": "string"}},
}


def openapi_document(routes: list[BaseRoute]) -> dict[str, Any]:
    """The document of every route with an operation in its docstring."""
    document: dict[str, Any] = SchemaGenerator(_BASE).get_schema(routes)
    for path, operations in document.get("paths", {}).items():
        parameters = [_PATH_PARAMETERS[name] for name in re.findall(r"{(\w+)}", path)]
        for operation in operations.values():
            operation["parameters"] = [*parameters, *operation.get("parameters", [])]
            if path.startswith("/api/") and path != "/api/openapi.json":
                operation["security"] = [{"basic": []}]
                operation["responses"] = {**_API_ERRORS, **operation["responses"]}
    return document


def openapi_endpoint(request: Request) -> Response:
    """This document.
    ---
    summary: The OpenAPI document of this API
    responses:
      200:
        description: the document
        content:
          application/json:
            schema:
              type: object
    """
    return JSONResponse(request.app.state.openapi)
