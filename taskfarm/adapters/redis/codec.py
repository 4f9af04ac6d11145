"""How runs, tasks and moments are written in Redis.

A task is one field of its run's tasks hash, 'state,progress,attempts,lease:started,worker'
(the scripts read and write the same format, in scripts/task_codec.lua): the state is one
letter, the lease is when it runs out and `started` when the task's last attempt started, in
whole microseconds since the epoch ('' for none; tasks stored before attempts had a start
have no ':started'), and the worker comes last because a worker uuid may contain commas.

The record of a task's last attempt is a JSON object in the run's attempts hash, its fields
absent when unknown: `outcome`, `worker`, `started` and `ended` (microseconds, as text: Lua's
JSON encoder would round such numbers), `exit_code` (as text) and `error`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping

from taskfarm.domain import (
    Attempt,
    AttemptOutcome,
    InputKind,
    Run,
    RunCounters,
    RunPolicy,
    Task,
    TaskState,
)

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
    letter, progress, attempts, times, worker = stored.split(",", 4)
    lease, _, started = times.partition(":")
    return Task(
        index=index,
        state=_STATE[letter],
        progress=int(progress),
        worker=worker or None,
        attempts=int(attempts),
        lease_expires=_moment(lease),
        started=_moment(started),
    )


def attempt_from_stored(stored: str | None) -> Attempt | None:
    if stored is None:
        return None
    fields = json.loads(stored)
    exit_code = fields.get("exit_code")
    return Attempt(
        outcome=AttemptOutcome(fields["outcome"]),
        worker=fields.get("worker"),
        started=_moment(fields.get("started")),
        ended=_moment(fields.get("ended")),
        exit_code=None if exit_code is None else int(exit_code),
        error=fields.get("error"),
    )


def _moment(micros: str | None) -> dt.datetime | None:
    return from_micros(int(micros)) if micros else None


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
        name=fields.get("name"),
        created=_moment(fields.get("created")),
        inputs=InputKind(fields["inputs"]) if "inputs" in fields else None,
        owner=fields.get("owner"),
    )


def new_run_hash(
    run_id: int,
    num_tasks: int,
    policy: RunPolicy,
    name: str | None,
    created: dt.datetime | None,
    inputs: InputKind | None,
    owner: str | None,
) -> dict[str, int | str]:
    """The hash of a new run; a field is absent when the run leaves it unset."""
    fields: dict[str, int | str] = {
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
    if name is not None:
        fields["name"] = name
    if created is not None:
        fields["created"] = to_micros(created)
    if inputs is not None:
        fields["inputs"] = inputs.value
    if owner is not None:
        fields["owner"] = owner
    return fields
