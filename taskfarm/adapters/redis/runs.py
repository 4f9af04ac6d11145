from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from taskfarm.adapters.redis import keys
from taskfarm.adapters.redis.codec import (
    new_run_hash,
    run_from_hash,
    state_letter,
    task_from_stored,
)
from taskfarm.adapters.redis.errors import storage_errors
from taskfarm.adapters.redis.scripts import Scripts
from taskfarm.domain import (
    FULL_PROGRESS,
    MAX_TASKS,
    Run,
    RunNotFound,
    Task,
    TaskChange,
    TaskNotFound,
)


class RedisRunStore:
    """Runs in Redis: a hash of counters per run, a hash of its touched tasks, and a sorted set
    of its requeued tasks. Every change is one Lua script on the run's slot."""

    def __init__(self, client: Any, scripts: Scripts) -> None:
        self._client = client
        self._scripts = scripts

    def create_run(self, uuid: str, num_tasks: int) -> Run:
        with storage_errors():
            run_id = int(self._client.incr(keys.LAST_RUN_ID))
            # The run exists before it is listed: a crash in between leaves a run that works
            # but is not listed, never a listed run that does not exist.
            self._client.hset(keys.RunKeys.of(uuid).run, mapping=new_run_hash(run_id, num_tasks))
            self._client.zadd(keys.RUN_INDEX, {uuid: run_id})
        return Run(id=run_id, uuid=uuid, num_tasks=num_tasks)

    def list_runs(self) -> Sequence[Run]:
        with storage_errors():
            uuids = self._client.zrange(keys.RUN_INDEX, 0, -1)
            pipeline = self._client.pipeline(transaction=False)
            for uuid in uuids:
                pipeline.hgetall(keys.RunKeys.of(uuid).run)
            hashes = pipeline.execute()
        return [
            run_from_hash(uuid, fields)
            for uuid, fields in zip(uuids, hashes, strict=True)
            if fields
        ]

    def get_run(self, uuid: str) -> Run:
        with storage_errors():
            fields = self._client.hgetall(self._keys(uuid).run)
        if not fields:
            raise RunNotFound(uuid)
        return run_from_hash(uuid, fields)

    def delete_run(self, uuid: str) -> None:
        run_keys = self._keys(uuid)
        with storage_errors():
            # One UNLINK of keys in one slot is atomic: no script needed.
            deleted = self._client.unlink(*run_keys.all())
            self._client.zrem(keys.RUN_INDEX, uuid)
        if not deleted:
            raise RunNotFound(uuid)

    def claim(self, run_uuid: str, worker_uuid: str) -> Task | None:
        with storage_errors():
            reply = self._scripts.claim(keys=self._keys(run_uuid).all(), args=[worker_uuid])
        if reply == "no-run":
            raise RunNotFound(run_uuid)
        if not reply:
            return None
        index, progress = reply
        return task_from_stored(int(index), f"c,{progress},{worker_uuid}")

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

    def update_task(self, run_uuid: str, index: int, change: TaskChange) -> Task:
        run_keys = self._keys(run_uuid)
        if not 0 <= index < MAX_TASKS:
            # Beyond 2**53 the scripts' numbers are not exact; no run is that large anyway.
            raise TaskNotFound(index, self.get_run(run_uuid).num_tasks)
        progress = "" if change.progress is None else str(change.progress)
        args = [str(index), progress, state_letter(change.state)]
        with storage_errors():
            reply = self._scripts.update(keys=run_keys.all(), args=args)
        if reply == "no-run":
            raise RunNotFound(run_uuid)
        if reply == "no-task":
            raise TaskNotFound(index, self.get_run(run_uuid).num_tasks)
        return task_from_stored(index, reply)

    def restart(self, run_uuid: str, *, everything: bool) -> None:
        args = ["1" if everything else "0", str(FULL_PROGRESS)]
        with storage_errors():
            reply = self._scripts.restart(keys=self._keys(run_uuid).all(), args=args)
        if reply == "no-run":
            raise RunNotFound(run_uuid)

    def _keys(self, uuid: str) -> keys.RunKeys:
        if not keys.is_run_uuid(uuid):
            raise RunNotFound(uuid)
        return keys.RunKeys.of(uuid)
