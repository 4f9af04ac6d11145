"""The HTTP API of a taskfarm server, one method per route, for one user."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any

import attrs
import requests
from requests.auth import HTTPBasicAuth

from taskfarm.client.auth import TokenAuth
from taskfarm.client.errors import TaskLost, expect
from taskfarm.client.login import Login
from taskfarm.client.session import DEFAULT_RETRIES, Retries, new_session

DEFAULT_URL_BASE = "http://localhost:5000/api/"
#: The most tasks one claim may ask for, or report done, as the server allows.
MAX_CLAIM_COUNT = 1000

JSON = dict[str, Any]


def api_base(server_url: str) -> str:
    """The API's base URL from a server's address, with or without its `api/` path."""
    base = server_url if server_url.endswith("/") else server_url + "/"
    return base if base.endswith("/api/") else base + "api/"


@attrs.frozen
class Claim:
    """A task handed to a worker: its index, how far earlier attempts got, how many attempts
    (claims since the run was last restarted) it has had, this one included, and its input
    when its run has inputs (`has_input`)."""

    task: int
    percent_completed: float = 0.0
    attempts: int = 1
    input: Any = None
    has_input: bool = False

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Claim:
        return cls(
            task=int(body["task"]),
            percent_completed=float(body.get("percentCompleted", 0.0)),
            attempts=int(body.get("attempts", 1)),
            input=body.get("input"),
            has_input="input" in body,
        )


@attrs.define
class Api:
    """The routes of one server, called as one user with a token. Unexpected statuses raise
    `UnexpectedStatus`; a 409 on a task a worker names itself for raises `TaskLost`.

    A requests session is not for sharing between threads: give each thread a `copy()`.
    """

    base: str
    session: requests.Session
    auth: TokenAuth
    retries: Retries

    @classmethod
    def log_in(
        cls, login: Login, base: str = DEFAULT_URL_BASE, retries: Retries = DEFAULT_RETRIES
    ) -> Api:
        """Logged in with a token from `GET /api/token` (for a worker token, that same one)."""
        session = new_session(base, retries)
        try:
            response = session.get(
                base + "token", auth=HTTPBasicAuth(login.username, login.password)
            )
            token = expect(response, 200).json()["token"]
        except BaseException:
            session.close()
            raise
        auth = TokenAuth(base + "token", login.username, login.password, token)
        return cls(base, session, auth, retries)

    def copy(self) -> Api:
        """The same login on a session of its own."""
        return Api(self.base, new_session(self.base, self.retries), self.auth.copy(), self.retries)

    def close(self) -> None:
        self.session.close()

    def call(
        self,
        method: str,
        path: str,
        *statuses: int,
        json: object = None,
        params: Mapping[str, str] | None = None,
        as_holder: bool = False,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        """Sends a request; `as_holder` when it names the worker that holds a task, so that a
        409 is that worker's `TaskLost`. `data` is a body other than JSON, streamed."""
        response = self.session.request(
            method,
            self.base + path,
            json=json,
            params=params,
            auth=self.auth,
            data=data,
            headers=headers,
        )
        if as_holder and response.status_code == 409:
            raise TaskLost(response.status_code, response.content)
        return expect(response, *statuses)

    # Runs

    def create_run(
        self,
        num_tasks: int | None,
        lease_seconds: int | None = None,
        max_attempts: int | None = None,
        name: str | None = None,
        *,
        inputs: list[Any] | None = None,
        sweep: Mapping[str, list[Any]] | None = None,
    ) -> JSON:
        """A run of `num_tasks` tasks, or of one task per input, or per combination of a
        sweep's axes."""
        fields = {
            "numTasks": num_tasks,
            "inputs": inputs,
            "sweep": sweep,
            "leaseSeconds": lease_seconds,
            "maxAttempts": max_attempts,
            "name": name,
        }
        body = {field: value for field, value in fields.items() if value is not None}
        return dict(self.call("POST", "run", 201, json=body).json())

    def upload_run(
        self,
        lines: Iterable[bytes] | IO[bytes],
        content_type: str,
        lease_seconds: int | None = None,
        max_attempts: int | None = None,
        name: str | None = None,
    ) -> JSON:
        """A run of one task per line of `lines` (`text/plain`: text; `application/x-ndjson`:
        a JSON value each), streamed to the server, however many."""
        fields = {"leaseSeconds": lease_seconds, "maxAttempts": max_attempts, "name": name}
        params = {field: str(value) for field, value in fields.items() if value is not None}
        response = self.call(
            "POST",
            "run/upload",
            201,
            params=params,
            data=lines,
            headers={"Content-Type": content_type},
        )
        return dict(response.json())

    def list_runs(self) -> list[JSON]:
        return list(self.call("GET", "runs", 200).json()["data"])

    def run_info(self, run_uuid: str, info: str = "") -> Any:
        """The run's information, or with `info` one item of it."""
        body = self.call("GET", f"runs/{run_uuid}", 200, params={"info": info}).json()
        return body if info == "" else body[info]

    def restart_run(self, run_uuid: str, *, everything: bool = False) -> None:
        self.call("POST", f"runs/{run_uuid}/restart", 204, params={"all": str(everything)})

    def delete_run(self, run_uuid: str) -> None:
        self.call("DELETE", f"runs/{run_uuid}", 204)

    def retry(self, run_uuid: str, tasks: Sequence[int] | None = None) -> int:
        """Puts the run's failed tasks, or the finished ones among `tasks`, back to waiting;
        how many went back."""
        body = {"status": "failed"} if tasks is None else {"tasks": list(tasks)}
        return int(self.call("POST", f"runs/{run_uuid}/retry", 200, json=body).json()["retried"])

    def list_tasks(self, run_uuid: str, status: str, page_size: int = 1000) -> Iterator[JSON]:
        """The run's tasks in `status`, in index order, each with its last attempt: page after
        page, as they are read."""
        after = -1
        while True:
            params = {"status": status, "after": str(after), "limit": str(page_size)}
            page = self.call("GET", f"runs/{run_uuid}/tasks", 200, params=params).json()
            yield from page["tasks"]
            if page["next"] is None:
                return
            after = page["next"]

    # Workers

    def register_worker(self, worker_uuid: str) -> JSON:
        body = {"uuid": worker_uuid, "hostname": socket.gethostname(), "pid": os.getpid()}
        return dict(self.call("POST", "worker", 201, json=body).json())

    def list_workers(self) -> list[JSON]:
        return list(self.call("GET", "workers", 200).json()["data"])

    # Worker tokens

    def create_token(
        self, run: str, expires_seconds: int | None = None, name: str | None = None
    ) -> JSON:
        """A worker token for `run`: its fields, and the token itself in `token`."""
        fields = {"run": run, "expiresSeconds": expires_seconds, "name": name}
        body = {field: value for field, value in fields.items() if value is not None}
        return dict(self.call("POST", "tokens", 201, json=body).json())

    def list_tokens(self) -> list[JSON]:
        return list(self.call("GET", "tokens", 200).json()["data"])

    def revoke_token(self, token_id: str) -> None:
        self.call("DELETE", f"tokens/{token_id}", 204)

    # Tasks

    def claim_one(self, run_uuid: str, worker_uuid: str) -> Claim | None:
        """The next task, by the route every taskfarm server has; None when none is left."""
        response = self.call("POST", f"runs/{run_uuid}/task", 201, 204, json=_by(worker_uuid))
        return None if response.status_code == 204 else Claim.from_json(response.json())

    def claim(self, run_uuid: str, worker_uuid: str, count: int) -> list[Claim]:
        """Up to `count` tasks in one request; none when none is left."""
        body = {**_by(worker_uuid), "count": count}
        response = self.call("POST", f"runs/{run_uuid}/tasks/claim", 201, 204, json=body)
        if response.status_code == 204:
            return []
        return [Claim.from_json(task) for task in response.json()["tasks"]]

    def finish_and_claim(
        self, run_uuid: str, worker_uuid: str, done: Sequence[int], count: int
    ) -> tuple[list[Claim], list[int]]:
        """Reports the tasks `done` (held by the worker) done, and claims up to `count` more,
        in one request: the tasks claimed, and those of `done` another worker holds now."""
        body = {**_by(worker_uuid), "done": list(done), "count": count}
        answer = self.call("POST", f"runs/{run_uuid}/tasks/claim", 200, 201, json=body).json()
        return [Claim.from_json(task) for task in answer["tasks"]], list(answer["lost"])

    def task_info(self, run_uuid: str, task: int, info: str = "") -> Any:
        body = self.call("GET", f"runs/{run_uuid}/tasks/{task}", 200, params={"info": info}).json()
        return body if info == "" else body[info]

    def update_task(self, run_uuid: str, task: int, fields: Mapping[str, object]) -> None:
        """Changes a task. With a `worker_uuid` among `fields`, raises `TaskLost` when the task
        belongs to another worker, and changes nothing."""
        path = f"runs/{run_uuid}/tasks/{task}"
        self.call("PUT", path, 204, json=dict(fields), as_holder="worker_uuid" in fields)

    def renew_leases(self, run_uuid: str, worker_uuid: str, tasks: Sequence[int]) -> list[int]:
        """Renews the leases of the worker's tasks (up to `MAX_CLAIM_COUNT`) in one request:
        those another worker holds now, or no longer computing, come back."""
        body = {**_by(worker_uuid), "tasks": list(tasks)}
        answer = self.call("POST", f"runs/{run_uuid}/tasks/heartbeat", 200, json=body).json()
        return list(answer["lost"])


def _by(worker_uuid: str) -> JSON:
    return {"worker_uuid": worker_uuid}
