"""How runs, tasks and moments are written in Redis.

A task is one field of its run's tasks hash, 'state,progress,attempts,lease,worker' (the
scripts read and write the same format, in scripts/task_codec.lua): the state is one letter,
the lease is when it runs out in whole microseconds since the epoch ('' for none), and the
worker comes last because a worker uuid may contain commas.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

from taskfarm.domain import Run, RunCounters, RunPolicy, Task, TaskState

_LETTER = {
    TaskState.WAITING: "w",
    TaskState.COMPUTING: "c",
    TaskState.DONE: "d",
    TaskState.FAILED: "f",
}
_STATE = {letter: state for state, letter in _LETTER.items()}

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


def to_micros(moment: dt.datetime) -> int:
    """A moment as whole microseconds since the epoch: the finest a datetime holds, so that
    `now + lease` comes back exactly. Lua's doubles hold it exactly until the year 2255."""
    return (moment - _EPOCH) // _MICROSECOND


def from_micros(micros: int) -> dt.datetime:
    return _EPOCH + micros * _MICROSECOND


def state_letter(state: TaskState | None) -> str:
    """The letter the scripts use for a state; '' leaves the state as it is."""
    return "" if state is None else _LETTER[state]


def task_from_stored(index: int, stored: str | None) -> Task:
    """A task from its stored field, or untouched when there is none."""
    if stored is None:
        return Task.untouched(index)
    letter, progress, attempts, lease, worker = stored.split(",", 4)
    return Task(
        index=index,
        state=_STATE[letter],
        progress=int(progress),
        worker=worker or None,
        attempts=int(attempts),
        lease_expires=from_micros(int(lease)) if lease else None,
    )


def run_from_hash(uuid: str, fields: Mapping[str, str]) -> Run:
    lease_seconds, max_attempts = fields.get("lease_seconds"), fields.get("max_attempts")
    return Run(
        id=int(fields["id"]),
        uuid=uuid,
        num_tasks=int(fields["num_tasks"]),
        policy=RunPolicy(
            lease_seconds=None if lease_seconds is None else int(lease_seconds),
            max_attempts=None if max_attempts is None else int(max_attempts),
        ),
        frontier=int(fields["frontier"]),
        counters=RunCounters(
            computing=int(fields["computing"]),
            done=int(fields["done"]),
            failed=int(fields["failed"]),
            progress=int(fields["progress"]),
        ),
    )


def new_run_hash(run_id: int, num_tasks: int, policy: RunPolicy) -> dict[str, int]:
    """The hash of a new run; a policy field is absent when the policy leaves it unset."""
    fields = {
        "id": run_id,
        "num_tasks": num_tasks,
        "frontier": 0,
        "computing": 0,
        "done": 0,
        "failed": 0,
        "progress": 0,
    }
    if policy.lease_seconds is not None:
        fields["lease_seconds"] = policy.lease_seconds
    if policy.max_attempts is not None:
        fields["max_attempts"] = policy.max_attempts
    return fields
