"""What each task of a run works on: nothing but its index, a stored input (a line of a file,
an element of a JSON list), or one combination of a parameter sweep.

A sweep is stored as its axes and each task's values are computed from its index, so a sweep
of 10**9 combinations costs what its axes cost. Stored inputs are kept once each, as JSON
text, and read for the tasks handed out.
"""

from __future__ import annotations

import enum
import json
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import attrs

from taskfarm.domain.errors import InvalidInput
from taskfarm.domain.limits import MAX_TASKS
from taskfarm.domain.values import is_storable_text

#: The most bytes of one input, as JSON text: a path, a line of parameters, a small object.
MAX_INPUT_BYTES = 64 * 1024
#: The most stored inputs of one run: a file of ten million lines, say 1 GB.
MAX_INPUTS = 10_000_000
#: The most axes of a sweep, and values of one axis: a sweep's description stays small.
MAX_AXES = 32
MAX_AXIS_VALUES = 10_000
#: An axis is named as an environment variable's part may be (`TASKFARM_<NAME>`).
AXIS_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"

_AXIS_NAME = re.compile(AXIS_NAME_PATTERN)


class InputKind(enum.Enum):
    """Where a run's tasks get their input."""

    #: A line of a text file: a string.
    LINES = "lines"
    #: An element of a JSON list: any JSON value.
    JSON = "json"
    #: One combination of a sweep's axes: `{name: value}`.
    SWEEP = "sweep"


@attrs.frozen
class Axis:
    name: str
    values: tuple[Any, ...]


@attrs.frozen
class Sweep:
    """Every combination of its axes' values, one task each, in the order of nested loops:
    the first axis changes slowest, the last fastest (as GNU parallel's `:::`)."""

    axes: tuple[Axis, ...]

    @classmethod
    def from_fields(cls, sweep: object) -> Sweep:
        """From the API's `{name: [values], ...}`, in the order of its names."""
        if not isinstance(sweep, Mapping) or not 1 <= len(sweep) <= MAX_AXES:
            raise InvalidInput(
                f"sweep must be an object of 1 to {MAX_AXES} axes, each a name and a list of "
                f'values: {{"seed": [1, 2, 3], "model": ["a", "b"]}}, not {sweep!r:.80}'
            )
        axes = []
        for name, values in sweep.items():
            if not isinstance(name, str) or not _AXIS_NAME.fullmatch(name):
                raise InvalidInput(
                    f"a sweep's axis is named with letters, digits and '_', not starting with "
                    f"a digit, at most 64 characters, not {name!r:.80}"
                )
            if not isinstance(values, list) or not 1 <= len(values) <= MAX_AXIS_VALUES:
                raise InvalidInput(
                    f"axis {name!r} of the sweep must be a list of 1 to {MAX_AXIS_VALUES} values"
                )
            if not all(isinstance(value, str | int | float) for value in values):
                raise InvalidInput(
                    f"the values of axis {name!r} must be strings, numbers or booleans"
                )
            axes.append(Axis(name, tuple(check_input(value) for value in values)))
        made = cls(tuple(axes))
        if made.size > MAX_TASKS:
            raise InvalidInput(f"the sweep has {made.size} combinations, more than {MAX_TASKS}")
        return made

    def to_fields(self) -> dict[str, list[Any]]:
        return {axis.name: list(axis.values) for axis in self.axes}

    @property
    def size(self) -> int:
        return math.prod(len(axis.values) for axis in self.axes)

    def combination(self, index: int) -> dict[str, Any]:
        """The values of task `index`: its index written in mixed radix, one digit per axis."""
        values: dict[str, Any] = {}
        for axis in reversed(self.axes):
            index, digit = divmod(index, len(axis.values))
            values[axis.name] = axis.values[digit]
        return {axis.name: values[axis.name] for axis in self.axes}

    def encoded(self) -> str:
        """The sweep as stores keep it: JSON text, read back by `decoded`."""
        return encode_input(self.to_fields())

    @classmethod
    def decoded(cls, text: str) -> Sweep:
        return cls.from_fields(json.loads(text))


@attrs.frozen
class RunInputs:
    """A new run's inputs: their kind, and for a sweep its axes. Stored inputs are written
    apart, before the run (`RunStore.stage_inputs`)."""

    kind: InputKind
    sweep: Sweep | None = None

    @classmethod
    def swept(cls, sweep: Sweep) -> RunInputs:
        return cls(InputKind.SWEEP, sweep)


def check_input(value: object) -> Any:
    """One task's input, as JSON gives it: small enough, storable anywhere, and not null
    (which would tell nothing to the command)."""
    if value is None:
        raise InvalidInput("an input may not be null")
    text = encode_input(value)
    if not is_storable_text(text) or "\\u0000" in text:
        raise InvalidInput("an input may not contain NUL characters or lone surrogates")
    if len(text.encode()) > MAX_INPUT_BYTES:
        raise InvalidInput(f"an input may take at most {MAX_INPUT_BYTES} bytes as JSON")
    return value


def encode_input(value: object) -> str:
    """An input as JSON text: how stores keep it, compact."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise InvalidInput(f"an input must be a JSON value, not {value!r:.80}") from error


def input_line(line: str) -> str | None:
    """The input a line of a file makes: the line without its end; None for a line with
    nothing on it, which makes no task."""
    if not line.strip():
        return None
    return str(check_input(line.rstrip("\r\n")))


def input_lines(lines: Iterable[str]) -> Iterator[str]:
    """The inputs of a file of lines: one per line with something on it."""
    for line in lines:
        made = input_line(line)
        if made is not None:
            yield made
