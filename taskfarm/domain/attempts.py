"""How a task's attempts end, and what the server keeps of the last one.

An attempt starts when a worker claims the task and ends when the task leaves `computing`:
done, failed, handed back (its worker stopped: a signal, a time limit) or lost (its lease ran
out). The record of the last attempt is what a person reads to learn why a task failed, where
and when; it is kept for tasks whose attempts did not all succeed, so that a run whose tasks
succeed at their first attempt stores none.
"""

from __future__ import annotations

import datetime as dt
import enum

import attrs

from taskfarm.domain.errors import InvalidInput
from taskfarm.domain.values import is_storable_text, whole_number

#: The most of a command's error output kept per task: its last lines, as `taskfarm work`
#: sends them, in at most this many bytes of UTF-8.
MAX_ERROR_BYTES = 4096
#: Exit statuses as any operating system reports them: POSIX's 0 to 255, Python's negative
#: signal numbers, Windows' 32-bit codes.
MIN_EXIT_CODE = -(2**31)
MAX_EXIT_CODE = 2**32 - 1


class AttemptOutcome(enum.Enum):
    DONE = "done"
    FAILED = "failed"
    #: Its worker gave the task back unfinished, as a stopping worker does: the attempt does
    #: not count against the run's limit.
    HANDED_BACK = "handed-back"
    #: Its lease ran out: the worker went silent, killed or cut off.
    LOST = "lost"


def check_exit_code(value: object) -> int:
    return whole_number("exitCode", value, MIN_EXIT_CODE, MAX_EXIT_CODE)


def check_error(value: object) -> str:
    if not isinstance(value, str) or not is_storable_text(value):
        raise InvalidInput("error must be a string of UTF-8 text, without NUL")
    if len(value.encode()) > MAX_ERROR_BYTES:
        raise InvalidInput(
            f"error must be at most {MAX_ERROR_BYTES} bytes of UTF-8, not "
            f"{len(value.encode())}: send the last lines of the command's error output"
        )
    return value


@attrs.frozen
class Attempt:
    """The end of one attempt at a task: how, by which worker, from when to when, and what
    the command said (`exit_code`, the tail of its error output in `error`) if its worker
    told."""

    outcome: AttemptOutcome
    worker: str | None
    started: dt.datetime | None
    ended: dt.datetime | None
    exit_code: int | None = None
    error: str | None = None

    @property
    def kept_anyway(self) -> bool:
        """Whether a store keeps this record even when the task has none yet. A success is
        kept only over the record of an earlier attempt, so that a task's record always
        tells its last attempt and tasks that succeed at once cost nothing more."""
        return self.outcome is not AttemptOutcome.DONE


def kept_attempt(recorded: Attempt | None, ended: Attempt | None) -> Attempt | None:
    """The record a task keeps once an attempt `ended` (None: none did) over `recorded`."""
    if ended is None or (recorded is None and not ended.kept_anyway):
        return recorded
    return ended
