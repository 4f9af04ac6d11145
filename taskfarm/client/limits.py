"""When a `taskfarm work` worker stops, and what it reports when it has."""

from __future__ import annotations

import attrs


@attrs.frozen
class Limits:
    """When a worker stops; None is no limit.

    - `max_tasks`: tasks to claim in all.
    - `time_limit`: seconds after which no task is claimed; running commands finish.
    - `hard_time_limit`: seconds after which running commands are stopped and their tasks
      handed back, as on SIGTERM.
    - `max_failures`: failed commands in a row after which the worker gives up, so that a
      broken command does not spin through the run; 0 never gives up.
    - `grace`: seconds a stopped command has between SIGTERM and SIGKILL.
    """

    max_tasks: int | None = None
    time_limit: float | None = None
    hard_time_limit: float | None = None
    max_failures: int = 10
    grace: float = 10.0


NO_LIMITS = Limits()


@attrs.frozen
class Outcome:
    """What a worker did and why it stopped. `exit_code`: 0 when every command it ran
    succeeded, 1 when some failed or it gave up, 128 + N when stopped by signal N."""

    done: int
    failed: int
    handed_back: int
    lost: int
    reason: str
    exit_code: int
