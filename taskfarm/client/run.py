"""Runs, as the published client's `TaskFarm` and `tfRuns` show them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests
from requests.auth import HTTPBasicAuth

from taskfarm.client.api import DEFAULT_URL_BASE, Api
from taskfarm.client.auth import TokenAuth
from taskfarm.client.errors import expect
from taskfarm.client.login import Login
from taskfarm.client.session import DEFAULT_RETRIES, Retries, new_session

#: What a run made by this client (or `taskfarm runs create`) gets unless told otherwise: a
#: task whose code keeps failing is given up after a few attempts, and the tasks of a worker
#: gone silent come back within minutes (workers keep their tasks' leases with heartbeats).
#: Runs made through the original API without these fields have neither, as they always had.
DEFAULT_LEASE_SECONDS = 600
DEFAULT_MAX_ATTEMPTS = 3


def tfRuns(  # noqa: N802 (the published client's name)
    username: str | None = None,
    password: str | None = None,
    url_base: str = DEFAULT_URL_BASE,
    *,
    token: str | None = None,
    retries: Retries = DEFAULT_RETRIES,
) -> list[dict[str, Any]]:
    """Every run of the user on the server (an admin's: every run), oldest first:
    `[{id, uuid, numTasks}, ...]`."""
    login = Login.of(username, password, token)
    with new_session(url_base, retries) as session:
        response = session.get(
            url_base + "runs", auth=HTTPBasicAuth(login.username, login.password)
        )
        return list(expect(response, 200).json()["data"])


class TaskFarm:
    """A run: created with `numTasks` tasks, or one per element of `inputs`, or one per
    combination of a `sweep`'s axes (`{"seed": [1, 2], "model": ["a", "b"]}`), and a `name`
    if given; or loaded by its `uuid` or its name.

    Works as the published client's `TaskFarm` (same arguments, properties, methods and
    `RuntimeError`s), and gives a new run a lease (`leaseSeconds`, 10 minutes unless told
    otherwise; None for none) and a limit on attempts (`maxAttempts`, 3 unless told
    otherwise; None for none: a failure is then final and a lost lease retried for ever).
    Logs in with `username` and `password`, or a `token` instead (by default the one in
    TASKFARM_TOKEN, when no username is given): a worker token from `taskfarm tokens create`
    works on the tasks of its run and nothing else. Requests are retried as `retries` says;
    `close()` (or a `with` block) closes the connections.
    """

    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        uuid: str | None = None,
        numTasks: int | None = None,  # noqa: N803 (the published client's name)
        url_base: str = DEFAULT_URL_BASE,
        *,
        leaseSeconds: int | None = DEFAULT_LEASE_SECONDS,  # noqa: N803 (the API's name)
        maxAttempts: int | None = DEFAULT_MAX_ATTEMPTS,  # noqa: N803 (the API's name)
        name: str | None = None,
        inputs: list[Any] | None = None,
        sweep: Mapping[str, list[Any]] | None = None,
        token: str | None = None,
        retries: Retries = DEFAULT_RETRIES,
    ) -> None:
        self._url_base = url_base
        self._api = Api.log_in(Login.of(username, password, token), url_base, retries)
        try:
            if uuid is None:
                if numTasks is None and inputs is None and sweep is None:
                    raise RuntimeError("numTasks must be set when creating a new task")
                created = self._api.create_run(
                    numTasks, leaseSeconds, maxAttempts, name, inputs=inputs, sweep=sweep
                )
                self._uuid: str = created["uuid"]
                self._numTasks = int(created["numTasks"])
                self._info: dict[str, Any] = created
            else:
                self._info = self._api.run_info(uuid)
                self._uuid = self._info["uuid"]
                self._numTasks = self._info["numTasks"]
        except BaseException:
            self._api.close()
            raise

    def __enter__(self) -> TaskFarm:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._api.close()

    def url(self, url: str) -> str:
        """The full URL of `url`, a path under the API."""
        return f"{self._url_base}{url}"

    @property
    def session(self) -> requests.Session:
        """The requests session."""
        return self._api.session

    @property
    def token_auth(self) -> TokenAuth:
        """The authentication that requests of the session use."""
        return self._api.auth

    @property
    def uuid(self) -> str:
        return self._uuid

    @property
    def name(self) -> str | None:
        return self._info.get("name")

    @property
    def numTasks(self) -> int:  # noqa: N802 (the published client's name)
        return self._numTasks

    def info(self, info: str) -> Any:
        """The run's information (`info=''`), or one item of it (`'numDone'`, ...)."""
        return self._api.run_info(self.uuid, info)

    @property
    def percentDone(self) -> float:  # noqa: N802 (the published client's name)
        return float(self.info("percentDone"))

    @property
    def numDone(self) -> int:  # noqa: N802 (the published client's name)
        return int(self.info("numDone"))

    @property
    def numWaiting(self) -> int:  # noqa: N802 (the published client's name)
        return int(self.info("numWaiting"))

    @property
    def numComputing(self) -> int:  # noqa: N802 (the published client's name)
        return int(self.info("numComputing"))

    @property
    def numFailed(self) -> int:  # noqa: N802 (named as the API names it)
        return int(self.info("numFailed"))

    @property
    def leaseSeconds(self) -> int | None:  # noqa: N802 (named as the API names it)
        lease: int | None = self.info("").get("leaseSeconds")
        return lease

    @property
    def maxAttempts(self) -> int | None:  # noqa: N802 (named as the API names it)
        attempts: int | None = self.info("").get("maxAttempts")
        return attempts

    def getTaskInfo(self, task: int, info: str) -> Any:  # noqa: N802 (the published client's name)
        """A task's information (`info=''`), or one item of it (`'status'`, ...)."""
        self._check_task(task)
        return self._api.task_info(self.uuid, task, info)

    def setTaskInfo(self, task: int, info: str, value: object) -> None:  # noqa: N802 (the published client's name)
        """Sets one item of a task: `'percentCompleted'` or `'status'`."""
        self._check_task(task)
        self._api.update_task(self.uuid, task, {info: value})

    def restart(self, everything: bool = False) -> None:
        """Puts unfinished tasks (with `everything`, every task) back to waiting. Only restart
        a run without a lease when no worker is computing its tasks any more."""
        self._api.restart_run(self.uuid, everything=everything)

    def delete(self) -> None:
        self._api.delete_run(self.uuid)

    def _check_task(self, task: int) -> None:
        if task < 0 or task >= self.numTasks:
            raise RuntimeError(f"task ID outside range 0 {self.numTasks - 1}")
