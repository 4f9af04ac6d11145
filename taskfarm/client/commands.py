"""A command to run once per task, as a batch script writes it, with the task's index and input
put in place of GNU parallel's replacement strings."""

from __future__ import annotations

import json
import os
import posixpath
import re
import shutil
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from taskfarm.client.api import Claim

#: Replacement strings, each found in one pass over an argument: text put in place is never
#: looked at again, so an input holding `{}` stays as it is.
_REPLACEMENT = re.compile(r"\{(|#|task|\.|/|//|/\.|[A-Za-z_][A-Za-z0-9_]*)\}")
#: Keys of an input object that make a variable `TASKFARM_<KEY>`.
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def input_text(value: Any) -> str:
    """An input as a command takes it: a string as it is, anything else as compact JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _without_extension(path: str) -> str:
    return posixpath.splitext(path)[0]


#: What each replacement string becomes, from the task's text (its input, else its index).
_OF_TEXT: dict[str, Callable[[str], str]] = {
    "": lambda text: text,
    ".": _without_extension,
    "/": posixpath.basename,
    "//": lambda text: posixpath.dirname(text) or ".",
    "/.": lambda text: _without_extension(posixpath.basename(text)),
}


@attrs.frozen
class CommandTemplate:
    """A program and its arguments, with replacement strings as GNU parallel has them:

    - `{}`: the task's input when its run has inputs, else its index;
    - `{#}` and `{task}`: the task's index;
    - `{.}`, `{/}`, `{//}`, `{/.}`: the input without its extension, its base name, its
      directory, its base name without extension;
    - `{name}`: the value `name` of an input that is an object (a sweep's axis); left as it is
      otherwise.

    Each argument stays one argument, whatever the input holds: nothing goes through a shell.
    The program also finds the index in `TASKFARM_TASK`, the run in `TASKFARM_RUN`, the input
    in `TASKFARM_INPUT` and each value of an object input in `TASKFARM_<NAME>`.
    """

    argv: tuple[str, ...] = attrs.field(validator=attrs.validators.min_len(1))

    def arguments(self, claim: Claim) -> list[str]:
        text = input_text(claim.input) if claim.has_input else str(claim.task)
        fields = claim.input if isinstance(claim.input, Mapping) else {}

        def replaced(found: re.Match[str]) -> str:
            key = found.group(1)
            if key in ("#", "task"):
                return str(claim.task)
            if key in _OF_TEXT:
                return _OF_TEXT[key](text)
            if key in fields:
                return input_text(fields[key])
            return found.group(0)

        return [_REPLACEMENT.sub(replaced, argument) for argument in self.argv]

    def program(self, environment: Mapping[str, str]) -> str | None:
        """Where the program is, found once on the PATH of `environment` when its name is
        the same for every task; None to leave the search to each start."""
        name = self.argv[0]
        if "/" in name or _REPLACEMENT.search(name):
            return None
        return shutil.which(name, path=environment.get("PATH", os.defpath))

    def environment(self, claim: Claim, run_uuid: str, base: Mapping[str, str]) -> dict[str, str]:
        environment = {**base, "TASKFARM_TASK": str(claim.task), "TASKFARM_RUN": run_uuid}
        if claim.has_input:
            environment["TASKFARM_INPUT"] = input_text(claim.input)
            if isinstance(claim.input, Mapping):
                environment.update(
                    (f"TASKFARM_{key.upper()}", input_text(value))
                    for key, value in claim.input.items()
                    if _VARIABLE.fullmatch(key)
                )
        return environment
