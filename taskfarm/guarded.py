"""The farm as one caller may use it: every entry point that serves people goes through this.

Each use case first checks what the caller's credentials allow (`Caller.require`), then,
for a use case of one run, whether the caller may reach that run (`Caller.check_run`): a user
reaches their own runs, an admin every run, a worker token the one it was made for. Another
user's run is not found, exactly as a run that does not exist. Changes are audited.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Sequence
from typing import Any

import anyio.to_thread
import attrs

from taskfarm import audit
from taskfarm.domain import (
    Caller,
    InputKind,
    Run,
    RunNotFound,
    Scope,
    Task,
    TaskChange,
    TaskHolder,
    Worker,
    WorkerRegistration,
    WorkerStatus,
    WorkerToken,
    check_token_lifetime,
    looks_like_uuid,
)
from taskfarm.service import Exchange, FarmService, Listing, TasksListed
from taskfarm.worker_tokens import IssuedToken, WorkerTokens


@attrs.frozen
class GuardedFarm:
    farm: FarmService
    tokens: WorkerTokens
    caller: Caller

    # Runs

    def create_run(
        self,
        num_tasks: object = None,
        lease_seconds: object = None,
        max_attempts: object = None,
        name: object = None,
        *,
        sweep: object = None,
    ) -> Run:
        self.caller.require(Scope.MANAGE)
        run = self.farm.create_run(
            num_tasks, lease_seconds, max_attempts, name, sweep=sweep, owner=self.caller.username
        )
        audit.record(self.caller, "create run", run=run.uuid, tasks=run.num_tasks)
        return run

    async def create_run_of_inputs(
        self,
        inputs: AsyncIterable[object],
        kind: InputKind,
        lease_seconds: object = None,
        max_attempts: object = None,
        name: object = None,
    ) -> Run:
        self.caller.require(Scope.MANAGE)
        run = await self.farm.create_run_of_inputs(
            inputs, kind, lease_seconds, max_attempts, name, owner=self.caller.username
        )
        audit.record(self.caller, "create run", run=run.uuid, tasks=run.num_tasks)
        return run

    def list_runs(self) -> Sequence[Run]:
        self.caller.require(Scope.MANAGE)
        return self.farm.list_runs(None if self.caller.admin else self.caller.username)

    def get_run(self, run: str) -> Run:
        return self.farm.get_run(self.run_uuid(run, Scope.WORK))

    def delete_run(self, run: str) -> None:
        run_uuid = self.run_uuid(run, Scope.MANAGE)
        self.farm.delete_run(run_uuid)
        audit.record(self.caller, "delete run", run=run_uuid)

    def restart_run(self, run: str, *, everything: bool) -> None:
        run_uuid = self.run_uuid(run, Scope.MANAGE)
        self.farm.restart_run(run_uuid, everything=everything)
        audit.record(self.caller, "restart run", run=run_uuid, everything=everything)

    def retry(self, run: str, tasks: object = None) -> int:
        run_uuid = self.run_uuid(run, Scope.MANAGE)
        retried = self.farm.retry(run_uuid, tasks)
        audit.record(self.caller, "retry tasks", run=run_uuid, retried=retried)
        return retried

    def holders(self, run: str, limit: int) -> Listing[TaskHolder]:
        return self.farm.holders(self.run_uuid(run, Scope.WORK), limit)

    def requeued_tasks(self, run: str, limit: int) -> Listing[Task]:
        return self.farm.requeued_tasks(self.run_uuid(run, Scope.WORK), limit)

    def list_tasks(
        self, run: str, status: object, after: object = -1, limit: object = 100
    ) -> TasksListed:
        return self.farm.list_tasks(self.run_uuid(run, Scope.WORK), status, after, limit)

    # Workers

    def register_worker(self, registration: WorkerRegistration) -> Worker:
        self.caller.require(Scope.WORK)
        return self.farm.register_worker(registration, self.caller.username)

    def list_workers(self) -> list[WorkerStatus]:
        self.caller.require(Scope.MANAGE)
        return self.farm.list_workers(None if self.caller.admin else self.caller.username)

    # Tasks

    async def claim(self, run: str, worker_uuid: str, count: object = 1) -> list[Task]:
        return await self.farm.claim(await self.run_uuid_on_loop(run), worker_uuid, count)

    async def finish_and_claim(
        self, run: str, worker_uuid: str, done: object, count: object = 0
    ) -> Exchange:
        return await self.farm.finish_and_claim(
            await self.run_uuid_on_loop(run), worker_uuid, done, count
        )

    async def inputs_of(self, run: str, tasks: Sequence[Task]) -> list[Any] | None:
        """The inputs of tasks just claimed from `run`, which `claim` checked."""
        return await self.farm.inputs_of(run, tasks)

    def task_inputs(self, run: str, indices: Sequence[int]) -> list[Any] | None:
        return self.farm.task_inputs(self.run_uuid(run, Scope.WORK), indices)

    def get_task(self, run: str, index: int) -> Task:
        return self.farm.get_task(self.run_uuid(run, Scope.WORK), index)

    def update_task(
        self, run: str, index: int, change: TaskChange, worker_uuid: str | None = None
    ) -> Task:
        return self.farm.update_task(self.run_uuid(run, Scope.WORK), index, change, worker_uuid)

    def heartbeat(self, run: str, index: int, worker_uuid: str | None = None) -> Task:
        return self.farm.heartbeat(self.run_uuid(run, Scope.WORK), index, worker_uuid)

    def renew_leases(self, run: str, worker_uuid: str, tasks: object) -> list[int]:
        return self.farm.renew_leases(self.run_uuid(run, Scope.WORK), worker_uuid, tasks)

    # Worker tokens

    def create_token(
        self, run: str, expires_seconds: object = None, name: object = None
    ) -> IssuedToken:
        """A worker token for a run the caller may reach."""
        run_uuid = self.run_uuid(run, Scope.TOKENS)
        lifetime = None if expires_seconds is None else check_token_lifetime(expires_seconds)
        issued = self.tokens.issue(self.caller.username, run_uuid, lifetime=lifetime, name=name)
        audit.record(self.caller, "create token", token=issued.token.id, run=run_uuid)
        return issued

    def list_tokens(self) -> Sequence[WorkerToken]:
        self.caller.require(Scope.TOKENS)
        return self.tokens.listed(self.caller)

    def revoke_token(self, token_id: str) -> WorkerToken:
        self.caller.require(Scope.TOKENS)
        revoked = self.tokens.revoke(self.caller, token_id)
        audit.record(self.caller, "revoke token", token=token_id, run=revoked.run)
        return revoked

    # Access

    def run_uuid(self, run: str, scope: Scope) -> str:
        """The uuid of the run that `run` names, if the caller may act on it in `scope`;
        raises Forbidden or RunNotFound. Blocks: it may read the store."""
        self.caller.require(scope)
        run_uuid = self.farm.uuid_of(run)
        if self.caller.run is not None:
            self.caller.check_run(run_uuid, None)
            return run_uuid
        try:
            self.caller.check_run(run_uuid, self.farm.owner_of(run_uuid))
        except RunNotFound:
            # As `run` was named: another user's run named by its name tells not its uuid.
            raise RunNotFound(run) from None
        return run_uuid

    async def run_uuid_on_loop(self, run: str) -> str:
        """`run_uuid` for work on the run's tasks, without leaving the event loop when the
        run is named by its uuid and its owner is remembered: the claim path."""
        caller = self.caller
        if looks_like_uuid(run):
            caller.require(Scope.WORK)
            if caller.run is not None:
                caller.check_run(run, None)
                return run
            remembered = self.farm.remembered_owner(run)
            if remembered is not None:
                caller.check_run(run, remembered[0])
                return run
        return await anyio.to_thread.run_sync(self.run_uuid, run, Scope.WORK)
