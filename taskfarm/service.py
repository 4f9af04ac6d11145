"""The use cases of runs, tasks and workers: check the input, ask the store, return the result."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import anyio.to_thread
import attrs

from taskfarm.blocking import BlockingCalls
from taskfarm.claim_batches import ClaimBatches
from taskfarm.domain import (
    MAX_INPUTS,
    InputKind,
    InvalidInput,
    Run,
    RunInputs,
    RunNotFound,
    RunPolicy,
    Sweep,
    Task,
    TaskChange,
    TaskHolder,
    TaskPage,
    TaskState,
    Wanted,
    Worker,
    WorkerNotFound,
    WorkerRegistration,
    WorkerStatus,
    check_claim_count,
    check_cursor,
    check_held_indices,
    check_input,
    check_num_tasks,
    check_page_size,
    check_run_name,
    check_task_indices,
    encode_input,
    looks_like_uuid,
    may_be_name,
)
from taskfarm.domain.limits import MAX_UUID_LENGTH
from taskfarm.domain.values import is_identifier
from taskfarm.domain.worker import LAST_SEEN_PRECISION
from taskfarm.ports import Clock, RunStore, WorkerStore
from taskfarm.recent import RecentlySeen
from taskfarm.run_inputs import InputSources
from taskfarm.run_owners import RunOwners

T = TypeVar("T")


async def _nothing_to_leave() -> None:
    """A store that opens nothing on an event loop has nothing to close there."""


@attrs.frozen
class Listing(Generic[T]):
    """The first items of a list that may be longer: `more` says whether it is."""

    items: Sequence[T]
    more: bool

    @classmethod
    def of(cls, items: Sequence[T], limit: int) -> Listing[T]:
        """From up to `limit + 1` items: the extra one only tells that there are more."""
        return cls(items[:limit], more=len(items) > limit)


@attrs.frozen
class TasksListed:
    """A page of a run's tasks, with the workers it names as they registered (None for one
    that no longer exists), for their host names."""

    page: TaskPage
    workers: Mapping[str, Worker | None]
    #: The input of each task of the page, for a run that has inputs.
    inputs: Sequence[Any] | None = None


@attrs.frozen
class FarmService:
    """What users and workers can do with runs. `default_policy` applies to runs created
    without a lease or attempt limit of their own. `leave_loop` closes what the store opened
    on the running event loop: the service calls it on the loops it made for `claim_tasks`,
    when closed."""

    runs: RunStore
    workers: WorkerStore
    clock: Clock
    default_policy: RunPolicy = attrs.field(factory=RunPolicy)
    leave_loop: Callable[[], Awaitable[None]] = attrs.field(default=_nothing_to_leave, repr=False)
    _claim_batches: ClaimBatches = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: ClaimBatches(self._send_claims), takes_self=True),
    )
    _blocking: BlockingCalls = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: BlockingCalls(self.leave_loop), takes_self=True),
    )
    _inputs: InputSources = attrs.field(
        init=False, default=attrs.Factory(lambda self: InputSources(self.runs), takes_self=True)
    )
    _owners: RunOwners = attrs.field(
        init=False,
        default=attrs.Factory(lambda self: RunOwners(self.runs, self.clock), takes_self=True),
    )
    _recently_seen: RecentlySeen = attrs.field(
        init=False,
        default=attrs.Factory(
            lambda self: RecentlySeen(
                lambda: self.clock.now().timestamp(), LAST_SEEN_PRECISION.total_seconds()
            ),
            takes_self=True,
        ),
    )

    def create_run(
        self,
        num_tasks: object = None,
        lease_seconds: object = None,
        max_attempts: object = None,
        name: object = None,
        *,
        sweep: object = None,
        owner: str | None = None,
    ) -> Run:
        """A run of `num_tasks` tasks, or one per combination of a `sweep`'s axes, belonging
        to the user `owner`."""
        if (num_tasks is None) == (sweep is None):
            raise InvalidInput(_ONE_SOURCE)
        if sweep is None:
            return self._create(
                uuid.uuid4().hex,
                check_num_tasks(num_tasks),
                lease_seconds,
                max_attempts,
                name,
                owner=owner,
            )
        swept = Sweep.from_fields(sweep)
        return self._create(
            uuid.uuid4().hex,
            check_num_tasks(swept.size),
            lease_seconds,
            max_attempts,
            name,
            RunInputs.swept(swept),
            owner,
        )

    async def create_run_of_inputs(
        self,
        inputs: AsyncIterable[object],
        kind: InputKind,
        lease_seconds: object = None,
        max_attempts: object = None,
        name: object = None,
        *,
        owner: str | None = None,
    ) -> Run:
        """A run of one task per input (strings for `InputKind.LINES`, any JSON value for
        `InputKind.JSON`), however many: they are checked and stored a chunk at a time, and
        the run is created once all are, so that memory stays bounded and nobody sees a run
        with inputs missing. Nothing is kept of a run whose inputs are refused."""
        run_uuid = uuid.uuid4().hex
        if name is not None:
            check_run_name(name)
        try:
            count = 0
            async for chunk in _chunks(inputs, INPUTS_PER_CHUNK):
                if count + len(chunk) > MAX_INPUTS:
                    raise InvalidInput(f"a run has at most {MAX_INPUTS} inputs")
                encoded = [encode_input(_checked(value, kind)) for value in chunk]
                await anyio.to_thread.run_sync(self.runs.stage_inputs, run_uuid, count, encoded)
                count += len(chunk)
            if count == 0:
                raise InvalidInput("a run needs at least one input: the inputs were empty")
            return await anyio.to_thread.run_sync(
                lambda: self._create(
                    run_uuid,
                    check_num_tasks(count),
                    lease_seconds,
                    max_attempts,
                    name,
                    RunInputs(kind),
                    owner,
                )
            )
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self.runs.discard_inputs, run_uuid)
            raise

    def _create(
        self,
        run_uuid: str,
        num_tasks: int,
        lease_seconds: object,
        max_attempts: object,
        name: object,
        inputs: RunInputs | None = None,
        owner: str | None = None,
    ) -> Run:
        policy = RunPolicy.from_fields(
            self.default_policy.lease_seconds if lease_seconds is None else lease_seconds,
            self.default_policy.max_attempts if max_attempts is None else max_attempts,
        )
        return self.runs.create_run(
            run_uuid,
            num_tasks,
            policy,
            name=None if name is None else check_run_name(name),
            created=self.clock.now(),
            inputs=inputs,
            owner=owner,
        )

    def list_runs(self, owner: str | None = None) -> Sequence[Run]:
        """Every run, or those of the user `owner`."""
        return self.runs.list_runs(owner)

    def get_run(self, run_uuid: str) -> Run:
        return self.runs.get_run(self.uuid_of(run_uuid))

    def owner_of(self, run_uuid: str) -> str | None:
        """The owner of the run with this uuid, remembered for a while once read (`RunOwners`);
        raises RunNotFound."""
        return self._owners.owner_of(run_uuid)

    def remembered_owner(self, run_uuid: str) -> tuple[str | None] | None:
        """`(owner,)` of the run, if this process remembers it; never blocks."""
        return self._owners.remembered(run_uuid)

    def delete_run(self, run_uuid: str) -> None:
        self.runs.delete_run(self.uuid_of(run_uuid))

    def restart_run(self, run_uuid: str, *, everything: bool) -> None:
        self.runs.restart(self.uuid_of(run_uuid), everything=everything)

    def register_worker(self, registration: WorkerRegistration, owner: str | None = None) -> Worker:
        worker = self.workers.register(registration, self.clock.now(), owner)
        self._recently_seen.add(worker.uuid)
        return worker

    def list_workers(self, owner: str | None = None) -> list[WorkerStatus]:
        """Every worker, or those the user `owner` registered, with the tasks each holds."""
        held = self.runs.tasks_held()
        return [
            WorkerStatus(worker, held.get(worker.uuid, 0))
            for worker in self.workers.list_workers(owner)
        ]

    def holders(self, run_uuid: str, limit: int) -> Listing[TaskHolder]:
        """The `limit` workers holding most of the run's tasks, busiest first, each with what
        it registered as."""
        held = self.runs.holders(self.uuid_of(run_uuid))
        busiest = sorted(held.items(), key=lambda item: (-item[1], item[0]))
        return Listing(
            [TaskHolder(uuid, count, self._registered(uuid)) for uuid, count in busiest[:limit]],
            more=len(busiest) > limit,
        )

    def requeued_tasks(self, run_uuid: str, limit: int) -> Listing[Task]:
        """The run's first tasks handed back and waiting to go out again, by index."""
        return Listing.of(self.runs.requeued_tasks(self.uuid_of(run_uuid), limit + 1), limit)

    def list_tasks(
        self, run_uuid: str, status: object, after: object = -1, limit: object = 100
    ) -> TasksListed:
        """A page of the run's tasks in `status`, after the index `after`, with what each
        one's last attempt left."""
        state = TaskState.parse(status)
        run_uuid = self.uuid_of(run_uuid)
        page = self.runs.list_tasks(run_uuid, state, check_cursor(after), check_page_size(limit))
        named = [report.task.worker for report in page.reports] + [
            report.last_attempt.worker for report in page.reports if report.last_attempt
        ]
        workers = {uuid: self._registered(uuid) for uuid in set(named) if uuid is not None}
        indices = [report.task.index for report in page.reports]
        inputs = self._inputs.inputs(run_uuid, indices) if indices else None
        return TasksListed(page, workers, inputs)

    def retry(self, run_uuid: str, tasks: object = None) -> int:
        """Puts the run's failed tasks back in the queue, or those among the indices `tasks`
        that finished (failed or done), with fresh attempts; how many it put back."""
        indices = None if tasks is None else check_task_indices(tasks)
        return self.runs.retry(self.uuid_of(run_uuid), indices)

    def uuid_of(self, run: str) -> str:
        """The uuid of the run that `run` names: its uuid, or its name."""
        run = _run(run)
        if may_be_name(run):
            # Or a uuid of another shape, such as one the original server made.
            with contextlib.suppress(RunNotFound):
                return self.runs.named_run(run)
        return run

    def _registered(self, worker_uuid: str) -> Worker | None:
        try:
            return self.workers.get_worker(worker_uuid)
        except WorkerNotFound:
            return None

    async def claim(self, run_uuid: str, worker_uuid: str, count: object = 1) -> list[Task]:
        """Up to `count` tasks of the run for the worker, none when nothing is left. What the
        claim says is checked, and its worker heard from (in a worker thread, when that means
        a write), before it waits with others for the store: a claim with a bad count, run
        uuid or worker fails alone, and its batch never sees it."""
        if looks_like_uuid(run_uuid):
            run_uuid = _run(run_uuid)
        else:
            run_uuid = await anyio.to_thread.run_sync(self.uuid_of, run_uuid)
        wanted = Wanted(worker_uuid, check_claim_count(count))
        if not self.heard_lately(worker_uuid):
            await anyio.to_thread.run_sync(self.hear_from, worker_uuid)
        return await self._claim_batches.claim(run_uuid, wanted)

    async def _send_claims(self, run_uuid: str, wanted: Sequence[Wanted]) -> list[list[Task]]:
        return await self.runs.claim_batch(run_uuid, wanted, self.clock.now())

    async def finish_and_claim(
        self, run_uuid: str, worker_uuid: str, done: object, count: object = 0
    ) -> Exchange:
        """Marks the tasks `done` (indices the worker holds) done at 100%, then claims up to
        `count` more: one request per batch of short tasks instead of one per task and per
        claim. A task the worker no longer holds (its lease ran out and another worker has
        it) is left as it is, each change fenced as `update_task` fences it, and named in
        `lost`. The halves are not one transaction: a worker that dies between them has
        finished its tasks and holds the new ones until their lease runs out, as with any
        claim whose answer is lost."""
        finished = check_held_indices("done", done)
        wanted = check_claim_count(count, least=0)
        lost = await anyio.to_thread.run_sync(self._finish, run_uuid, worker_uuid, finished)
        claimed = await self.claim(run_uuid, worker_uuid, wanted) if wanted else []
        return Exchange(claimed, lost)

    def _finish(self, run_uuid: str, worker_uuid: str, indices: Sequence[int]) -> list[int]:
        run_uuid = self.uuid_of(run_uuid)
        self.hear_from(worker_uuid)
        if not indices:
            return []
        return self.runs.change_tasks(run_uuid, indices, FINISHED, self.clock.now(), worker_uuid)

    def claim_tasks(self, run_uuid: str, worker_uuid: str, count: object = 1) -> list[Task]:
        """`claim`, for a caller that is not on an event loop."""
        return self._blocking.run(self.claim(run_uuid, worker_uuid, count))

    def claim_task(self, run_uuid: str, worker_uuid: str) -> Task | None:
        claimed = self.claim_tasks(run_uuid, worker_uuid)
        return claimed[0] if claimed else None

    async def inputs_of(self, run_uuid: str, tasks: Sequence[Task]) -> list[Any] | None:
        """The inputs of tasks just claimed from the run, in turn; None for a run whose tasks
        have none."""
        if not tasks:
            return None
        if not looks_like_uuid(run_uuid):
            run_uuid = await anyio.to_thread.run_sync(self.uuid_of, run_uuid)
        return await self._inputs.inputs_on_loop(run_uuid, [task.index for task in tasks])

    def task_inputs(self, run_uuid: str, indices: Sequence[int]) -> list[Any] | None:
        """The inputs of the run's tasks at `indices`, or None for a run whose tasks have
        none."""
        return self._inputs.inputs(self.uuid_of(run_uuid), indices)

    def get_task(self, run_uuid: str, index: int) -> Task:
        return self.runs.get_task(self.uuid_of(run_uuid), index)

    def update_task(
        self, run_uuid: str, index: int, change: TaskChange, worker_uuid: str | None = None
    ) -> Task:
        """Changes a task and renews its lease; `worker_uuid`, when given, must hold the task."""
        run_uuid = self.uuid_of(run_uuid)
        if worker_uuid is not None:
            self.hear_from(worker_uuid)
        return self.runs.update_task(run_uuid, index, change, self.clock.now(), worker_uuid)

    def heartbeat(self, run_uuid: str, index: int, worker_uuid: str | None = None) -> Task:
        """Renews the lease of a task without changing it."""
        return self.update_task(run_uuid, index, TaskChange(), worker_uuid)

    def renew_leases(self, run_uuid: str, worker_uuid: str, tasks: object) -> list[int]:
        """Renews the leases of many tasks the worker holds at once, as `heartbeat` does each:
        the tasks it no longer holds (another worker has them, or they are not computing)
        are left as they are, and returned."""
        indices = check_held_indices("tasks", tasks)
        run_uuid = self.uuid_of(run_uuid)
        self.hear_from(worker_uuid)
        return self.runs.change_tasks(
            run_uuid, indices, TaskChange(), self.clock.now(), worker_uuid
        )

    def heard_lately(self, worker_uuid: str) -> bool:
        """Whether this process recorded the worker as heard from within
        `LAST_SEEN_PRECISION`: then hearing from it again costs nothing. Never blocks."""
        return worker_uuid in self._recently_seen

    def hear_from(self, worker_uuid: str) -> None:
        """Records that the worker was heard from, unless `heard_lately`; raises
        WorkerNotFound, except for a worker recorded then."""
        if not self.heard_lately(worker_uuid):
            self.workers.seen(_worker(worker_uuid), self.clock.now())
            self._recently_seen.add(worker_uuid)

    def expire_leases(self) -> int:
        """Hands back the tasks whose lease ran out; each server process calls this often."""
        return self.runs.expire_leases(self.clock.now())

    def close(self) -> None:
        """Closes the event loops `claim_tasks` made, once no thread calls it any more."""
        self._blocking.close()


#: What a task reported done with a claim becomes.
FINISHED = TaskChange.from_fields(100, TaskState.DONE.value)


@attrs.frozen
class Exchange:
    """What a claim that reports tasks done gives: the tasks claimed, and those of the
    reported that the worker no longer held."""

    claimed: list[Task]
    lost: list[int]


def _run(run_uuid: str) -> str:
    # Whatever a URL holds, a uuid no run could have is simply not found: stores never see it.
    if not is_identifier(run_uuid, MAX_UUID_LENGTH):
        raise RunNotFound(run_uuid)
    return run_uuid


def _worker(worker_uuid: str) -> str:
    if not is_identifier(worker_uuid, MAX_UUID_LENGTH):
        raise WorkerNotFound(worker_uuid)
    return worker_uuid


#: Inputs checked and stored at once: one write of the store each.
INPUTS_PER_CHUNK = 1000
_ONE_SOURCE = (
    "say what the run's tasks are: numTasks (a number), inputs (a list, one task each) or "
    "sweep (an object of axes, one task per combination), one of them"
)


def _checked(value: object, kind: InputKind) -> object:
    if kind is InputKind.LINES and not isinstance(value, str):
        raise InvalidInput(f"the inputs of a run of lines are strings, not {value!r:.80}")
    return check_input(value)


async def _chunks(values: AsyncIterable[T], size: int) -> AsyncIterator[list[T]]:
    chunk: list[T] = []
    async for value in values:
        chunk.append(value)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
