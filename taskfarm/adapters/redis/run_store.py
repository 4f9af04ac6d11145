from __future__ import annotations

import collections
import datetime as dt
import heapq
from collections.abc import Mapping, Sequence
from typing import Any

from taskfarm.adapters.redis import keys
from taskfarm.adapters.redis.codec import (
    attempt_from_stored,
    new_run_hash,
    run_from_hash,
    state_letter,
    task_from_stored,
    to_micros,
)
from taskfarm.adapters.redis.errors import storage_errors
from taskfarm.adapters.redis.loop_claims import LoopClaims
from taskfarm.adapters.redis.scripts import Scripts
from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_TASKS,
    MAX_UUID_LENGTH,
    Conflict,
    InvalidInput,
    Run,
    RunInputs,
    RunNotFound,
    RunPolicy,
    Sweep,
    Task,
    TaskChange,
    TaskNotFound,
    TaskPage,
    TaskReport,
    TaskState,
    Wanted,
    name_taken,
    scan_window,
    scanned_page,
    waiting_page,
)

#: Expired tasks handed back per script call: a sweep after a long outage must not stop Redis
#: from serving anyone else while it hands back a whole run at once.
EXPIRY_BATCH = 1000
#: Task fields read per command when counting the tasks workers hold.
READ_BATCH = 10_000


class RedisRunStore:
    """Runs in Redis: per run a hash of counters and policy, a hash of its touched tasks, a
    sorted set of its requeued tasks and one of its computing tasks by lease expiry. Every
    change is one Lua script on the run's slot."""

    def __init__(self, client: Any, scripts: Scripts, loop_claims: LoopClaims) -> None:
        self._client = client
        self._scripts = scripts
        # Claims go through an asyncio client of the running event loop, the rest through
        # `client`.
        self._loop_claims = loop_claims

    def create_run(
        self,
        uuid: str,
        num_tasks: int,
        policy: RunPolicy,
        *,
        name: str | None = None,
        created: dt.datetime | None = None,
        inputs: RunInputs | None = None,
        owner: str | None = None,
    ) -> Run:
        if not keys.is_run_uuid(uuid):
            raise InvalidInput(
                f"a run uuid has 1 to {MAX_UUID_LENGTH} characters and no braces, not {uuid!r}"
            )
        run_keys = keys.RunKeys.of(uuid)
        with storage_errors():
            # Looked at first so that a taken uuid uses up no id; the script looks again,
            # atomically.
            if self._client.exists(run_keys.run):
                raise Conflict(f"there is already a run with uuid {uuid!r}")
            # The name is taken first, atomically, and given back if the run is not made: a
            # crash in between leaves a name that names no run, which `named_run` ignores.
            if name is not None and not self._client.hsetnx(keys.RUN_NAMES, name, uuid):
                raise name_taken(name)
            run_id = int(self._client.incr(keys.LAST_RUN_ID))
            kind = None if inputs is None else inputs.kind
            fields = new_run_hash(run_id, num_tasks, policy, name, created, kind, owner)
            # Stored before the run, as its staged inputs are.
            if inputs is not None and inputs.sweep is not None:
                self._client.set(run_keys.sweep, inputs.sweep.encoded())
            stored = self._scripts.create_run(
                keys=[run_keys.run], args=[str(item) for pair in fields.items() for item in pair]
            )
            if not stored:
                self._release_name(name, uuid)
                raise Conflict(f"there is already a run with uuid {uuid!r}")
            # The run exists before it is listed: a crash in between leaves a run that works
            # but is not listed, never a listed run that does not exist.
            if policy.lease_seconds is not None:
                self._client.sadd(keys.LEASED_RUNS, uuid)
            self._client.zadd(keys.RUN_INDEX, {uuid: run_id})
        return run_from_hash(uuid, {key: str(value) for key, value in fields.items()})

    def stage_inputs(self, run_uuid: str, first: int, inputs: Sequence[str]) -> None:
        if inputs:
            mapping = {str(index): value for index, value in enumerate(inputs, start=first)}
            with storage_errors():
                self._client.hset(self._keys(run_uuid).inputs, mapping=mapping)

    def discard_inputs(self, run_uuid: str) -> None:
        run_keys = self._keys(run_uuid)
        with storage_errors():
            self._client.unlink(run_keys.inputs, run_keys.sweep)

    def run_sweep(self, run_uuid: str) -> Sweep:
        with storage_errors():
            encoded = self._client.get(self._keys(run_uuid).sweep)
        if encoded is None:
            raise RunNotFound(run_uuid)
        return Sweep.decoded(encoded)

    def task_inputs(self, run_uuid: str, indices: Sequence[int]) -> list[str | None]:
        with storage_errors():
            return list(self._read(self._keys(run_uuid).inputs, indices))

    def named_run(self, name: str) -> str:
        with storage_errors():
            uuid = self._client.hget(keys.RUN_NAMES, name)
            if uuid is None or not self._client.exists(keys.RunKeys.of(uuid).run):
                raise RunNotFound(name)
        return str(uuid)

    def _release_name(self, name: str | None, uuid: str) -> None:
        if name is not None:
            self._scripts.release_name(keys=[keys.RUN_NAMES], args=[name, uuid])

    def list_runs(self, owner: str | None = None) -> Sequence[Run]:
        with storage_errors():
            uuids = self._client.zrange(keys.RUN_INDEX, 0, -1)
            pipeline = self._client.pipeline(transaction=False)
            for uuid in uuids:
                pipeline.hgetall(keys.RunKeys.of(uuid).run)
            hashes = pipeline.execute()
        return [
            run_from_hash(uuid, fields)
            for uuid, fields in zip(uuids, hashes, strict=True)
            if fields and (owner is None or fields.get("owner") == owner)
        ]

    def disown(self, owner: str) -> int:
        owned = self.list_runs(owner)
        with storage_errors():
            pipeline = self._client.pipeline(transaction=False)
            for run in owned:
                pipeline.hdel(keys.RunKeys.of(run.uuid).run, "owner")
            pipeline.execute()
        return len(owned)

    def get_run(self, uuid: str) -> Run:
        with storage_errors():
            fields = self._client.hgetall(self._keys(uuid).run)
        if not fields:
            raise RunNotFound(uuid)
        return run_from_hash(uuid, fields)

    def delete_run(self, uuid: str) -> None:
        run_keys = self._keys(uuid)
        with storage_errors():
            # The name goes first: a crash after it leaves a run with no name, never a name
            # that nobody could take again.
            self._release_name(self._client.hget(run_keys.run, "name"), uuid)
            # One UNLINK of keys in one slot is atomic: no script needed.
            deleted = self._client.unlink(*run_keys.all())
            self._client.unlink(run_keys.sweep, run_keys.inputs)
            self._client.zrem(keys.RUN_INDEX, uuid)
            self._client.srem(keys.LEASED_RUNS, uuid)
        if not deleted:
            raise RunNotFound(uuid)

    async def claim_batch(
        self, run_uuid: str, wanted: Sequence[Wanted], now: dt.datetime
    ) -> list[list[Task]]:
        reply = await self._loop_claims.claim(self._keys(run_uuid).all(), _claim_args(wanted, now))
        return _claimed(run_uuid, reply)

    def get_task(self, run_uuid: str, index: int) -> Task:
        run_keys = self._keys(run_uuid)
        with storage_errors():
            num_tasks, stored = (
                self._client.pipeline(transaction=False)
                .hget(run_keys.run, "num_tasks")
                .hget(run_keys.tasks, str(index))
                .execute()
            )
        if num_tasks is None:
            raise RunNotFound(run_uuid)
        if not 0 <= index < int(num_tasks):
            raise TaskNotFound(index, int(num_tasks))
        return task_from_stored(index, stored)

    def _check_scripted(self, indices: Sequence[int], run_uuid: str) -> None:
        """Raises TaskNotFound for an index no script may be given: beyond 2**53 the
        scripts' numbers are not exact, and no run is that large anyway."""
        for index in indices:
            if not 0 <= index < MAX_TASKS:
                raise TaskNotFound(index, self.get_run(run_uuid).num_tasks)

    def update_task(
        self,
        run_uuid: str,
        index: int,
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> Task:
        run_keys = self._keys(run_uuid)
        self._check_scripted([index], run_uuid)
        args = [str(index), *_change_args(change, now)]
        if worker_uuid is not None:
            args.append(worker_uuid)
        with storage_errors():
            reply = self._scripts.update(keys=run_keys.all(), args=args)
        if reply == "no-run":
            raise RunNotFound(run_uuid)
        if isinstance(reply, str):
            return task_from_stored(index, reply)
        refusal, detail = reply
        if refusal == "no-task":
            raise TaskNotFound(index, int(detail))
        # The script refused because another worker holds the task, or because a heartbeat found
        # it not computing; the domain says so in its own words when asked for the same change.
        held = task_from_stored(index, detail)
        held.changed(change, now, self.get_run(run_uuid).policy, worker_uuid)
        raise AssertionError(f"the update script refused a change the domain allows: {held}")

    def change_tasks(
        self,
        run_uuid: str,
        indices: Sequence[int],
        change: TaskChange,
        now: dt.datetime,
        worker_uuid: str | None = None,
    ) -> list[int]:
        self._check_scripted(indices, run_uuid)
        args = [*_change_args(change, now), worker_uuid or "", *map(str, indices)]
        with storage_errors():
            reply = self._scripts.change(keys=self._keys(run_uuid).all(), args=args)
        if reply == "no-run":
            raise RunNotFound(run_uuid)
        if reply[:1] == ["no-task"]:
            _, num_tasks, index = reply
            raise TaskNotFound(int(index), int(num_tasks))
        return [int(index) for index in reply]

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        args = ["1" if everything else "0", str(FULL_PROGRESS)]
        with storage_errors():
            reply = self._scripts.restart(keys=self._keys(run_uuid).all(), args=args)
        if reply == "no-run":
            raise RunNotFound(run_uuid)

    def retry(self, run_uuid: str, indices: Sequence[int] | None) -> int:
        args = [] if indices is None else [str(index) for index in indices]
        with storage_errors():
            reply = self._scripts.retry(keys=self._keys(run_uuid).all(), args=args)
        if reply == "no-run":
            raise RunNotFound(run_uuid)
        return int(reply)

    def list_tasks(self, run_uuid: str, state: TaskState, after: int, limit: int) -> TaskPage:
        run = self.get_run(run_uuid)
        run_keys = self._keys(run_uuid)
        with storage_errors():
            if state is TaskState.WAITING:
                requeued = self._reports(run_keys, self._waiting(run_keys, after, limit))
                window = scan_window(run, after, limit, run.frontier)
                found = self._read(run_keys.tasks, window)
                stored = {i for i, task in zip(window, found, strict=True) if task is not None}
                page = waiting_page(run, after, limit, _now_in(state, requeued), stored)
            elif state is TaskState.DONE:
                window = scan_window(run, after, limit)
                reports = self._reports(run_keys, list(window))
                page = scanned_page(run, window, _now_in(state, reports))
            else:
                if state is TaskState.FAILED:
                    indices = self._indexed(run_keys.failed, after, limit)
                else:
                    computing = map(int, self._client.zrange(run_keys.computing, 0, -1))
                    indices = sorted(i for i in computing if i > after)[:limit]
                reports = self._reports(run_keys, indices)
                page = TaskPage.indexed(_now_in(state, reports), limit)
        return page

    def _waiting(self, run_keys: keys.RunKeys, after: int, limit: int) -> list[int]:
        """The first `limit` indices past `after` of the run's stored waiting tasks: of both
        its queues, merged."""
        queues = [self._indexed(queue, after, limit) for queue in run_keys.queues]
        return list(heapq.merge(*queues))[:limit]

    def _indexed(self, indexed: str, after: int, limit: int) -> list[int]:
        """The first `limit` indices past `after` of a sorted set scored by index."""
        found = self._client.zrangebyscore(indexed, f"({after}", "+inf", start=0, num=limit)
        return [int(index) for index in found]

    def _read(self, key: str, indices: Sequence[int]) -> list[str | None]:
        return self._client.hmget(key, [str(i) for i in indices]) if indices else []

    def _reports(self, run_keys: keys.RunKeys, indices: Sequence[int]) -> list[TaskReport]:
        """The tasks at `indices`, touched or not, with their attempts."""
        if not indices:
            return []
        fields = [str(index) for index in indices]
        stored, attempts = (
            self._client.pipeline(transaction=False)
            .hmget(run_keys.tasks, fields)
            .hmget(run_keys.attempts, fields)
            .execute()
        )
        return [
            TaskReport(task_from_stored(index, task), attempt_from_stored(attempt))
            for index, task, attempt in zip(indices, stored, attempts, strict=True)
        ]

    def expire_leases(self, now: dt.datetime) -> int:
        deadline = str(to_micros(now))
        expired = 0
        with storage_errors():
            uuids = sorted(self._client.smembers(keys.LEASED_RUNS))
            # One pipelined look at every leased run, then a script only where a lease ran out:
            # every server process sweeps every second, most often finding nothing to do.
            pipeline = self._client.pipeline(transaction=False)
            for uuid in uuids:
                pipeline.zrangebyscore(
                    keys.RunKeys.of(uuid).computing, "-inf", deadline, start=0, num=1
                )
            firsts = pipeline.execute()
            for uuid, first in zip(uuids, firsts, strict=True):
                if not first:
                    continue
                run_keys = keys.RunKeys.of(uuid).all()
                while True:
                    batch = int(
                        self._scripts.expire(keys=run_keys, args=[deadline, str(EXPIRY_BATCH)])
                    )
                    expired += batch
                    if batch < EXPIRY_BATCH:
                        break
        return expired

    def tasks_held(self) -> Mapping[str, int]:
        with storage_errors():
            uuids = self._client.zrange(keys.RUN_INDEX, 0, -1)
            pipeline = self._client.pipeline(transaction=False)
            for uuid in uuids:
                pipeline.zrange(keys.RunKeys.of(uuid).computing, 0, -1)
            computing = pipeline.execute()
            pipeline = self._client.pipeline(transaction=False)
            for uuid, indices in zip(uuids, computing, strict=True):
                _read_tasks(pipeline, keys.RunKeys.of(uuid), indices)
            batches = pipeline.execute()
        return _held(batches)

    def holders(self, run_uuid: str) -> Mapping[str, int]:
        run_keys = self._keys(run_uuid)
        with storage_errors():
            exists, indices = (
                self._client.pipeline(transaction=False)
                .exists(run_keys.run)
                .zrange(run_keys.computing, 0, -1)
                .execute()
            )
            if not exists:
                raise RunNotFound(run_uuid)
            pipeline = _read_tasks(self._client.pipeline(transaction=False), run_keys, indices)
            batches = pipeline.execute()
        return _held(batches)

    def requeued_tasks(self, run_uuid: str, limit: int) -> Sequence[Task]:
        run_keys = self._keys(run_uuid)
        with storage_errors():
            if not self._client.exists(run_keys.run):
                raise RunNotFound(run_uuid)
            indices = self._waiting(run_keys, -1, limit)
            stored = self._read(run_keys.tasks, indices)
        tasks = (task_from_stored(i, s) for i, s in zip(indices, stored, strict=True))
        # A task may have changed between the reads: list it only if it still is waiting.
        return [task for task in tasks if task.state is TaskState.WAITING]

    def _keys(self, uuid: str) -> keys.RunKeys:
        if not keys.is_run_uuid(uuid):
            raise RunNotFound(uuid)
        return keys.RunKeys.of(uuid)


def _now_in(state: TaskState, reports: list[TaskReport]) -> list[TaskReport]:
    """The reports of tasks in `state`: a task may have changed since it was listed in it."""
    return [report for report in reports if report.task.state is state]


def _read_tasks(pipeline: Any, run_keys: keys.RunKeys, indices: list[str]) -> Any:
    """Queues reads of the run's tasks at `indices` on the pipeline, in batches."""
    for start in range(0, len(indices), READ_BATCH):
        pipeline.hmget(run_keys.tasks, indices[start : start + READ_BATCH])
    return pipeline


def _held(batches: list[list[str | None]]) -> collections.Counter[str]:
    held: collections.Counter[str] = collections.Counter()
    for batch in batches:
        for stored in batch:
            # A task may have changed since it was listed as computing: count it only if it
            # still is.
            task = task_from_stored(0, stored)
            if task.state is TaskState.COMPUTING and task.worker is not None:
                held[task.worker] += 1
    return held


def _change_args(change: TaskChange, now: dt.datetime) -> list[str]:
    """The change as the scripts read it (`change_in` in task_change.lua)."""
    return [
        "" if change.progress is None else str(change.progress),
        state_letter(change.state),
        str(to_micros(now)),
        "" if change.exit_code is None else str(change.exit_code),
        "" if change.error is None else "=" + change.error,
    ]


def _claim_args(wanted: Sequence[Wanted], now: dt.datetime) -> list[str]:
    args = [str(to_micros(now))]
    for one in wanted:
        args += [one.worker_uuid, str(one.count)]
    return args


def _claimed(run_uuid: str, reply: Any) -> list[list[Task]]:
    """The tasks of each claim, from the claim script's reply."""
    if reply == "no-run":
        raise RunNotFound(run_uuid)
    return [
        [
            task_from_stored(int(index), stored)
            for index, stored in zip(claimed[::2], claimed[1::2], strict=True)
        ]
        for claimed in reply
    ]
