"""How runs and tasks are written in Redis hashes."""

from __future__ import annotations

from collections.abc import Mapping

from taskfarm.domain import Run, RunCounters, Task, TaskState

_LETTER = {TaskState.WAITING: "w", TaskState.COMPUTING: "c", TaskState.DONE: "d"}
_STATE = {letter: state for state, letter in _LETTER.items()}


def state_letter(state: TaskState | None) -> str:
    """The letter the scripts use for a state; '' leaves the state as it is."""
    return "" if state is None else _LETTER[state]


def task_from_stored(index: int, stored: str | None) -> Task:
    """A task from its 'state,progress,worker' field, or untouched when there is none."""
    if stored is None:
        return Task.untouched(index)
    letter, progress, worker = stored.split(",", 2)
    return Task(index=index, state=_STATE[letter], progress=int(progress), worker=worker or None)


def run_from_hash(uuid: str, fields: Mapping[str, str]) -> Run:
    return Run(
        id=int(fields["id"]),
        uuid=uuid,
        num_tasks=int(fields["num_tasks"]),
        frontier=int(fields["frontier"]),
        counters=RunCounters(
            computing=int(fields["computing"]),
            done=int(fields["done"]),
            progress=int(fields["progress"]),
        ),
    )


def new_run_hash(run_id: int, num_tasks: int) -> dict[str, int]:
    return {
        "id": run_id,
        "num_tasks": num_tasks,
        "frontier": 0,
        "computing": 0,
        "done": 0,
        "progress": 0,
    }
