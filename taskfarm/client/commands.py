"""A command to run once per task, as a batch script writes it."""

from __future__ import annotations

from collections.abc import Mapping

import attrs

#: Written in a command's arguments, these become the task's index.
PLACEHOLDERS = ("{task}", "{}")


@attrs.frozen
class CommandTemplate:
    """A program and its arguments, in which `{}` or `{task}` stand for the task's index:
    `./simulate --seed {} --out results/{}.h5`. The program also finds the index in
    `TASKFARM_TASK` and the run in `TASKFARM_RUN`."""

    argv: tuple[str, ...] = attrs.field(validator=attrs.validators.min_len(1))

    def arguments(self, task: int) -> list[str]:
        index = str(task)
        arguments = []
        for argument in self.argv:
            for placeholder in PLACEHOLDERS:
                argument = argument.replace(placeholder, index)
            arguments.append(argument)
        return arguments

    def environment(self, task: int, run_uuid: str, base: Mapping[str, str]) -> dict[str, str]:
        return {**base, "TASKFARM_TASK": str(task), "TASKFARM_RUN": run_uuid}
