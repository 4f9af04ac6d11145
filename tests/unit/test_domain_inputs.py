"""The inputs of a run's tasks: a sweep's combinations, and what an input may be."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.domain import MAX_INPUT_BYTES, InvalidInput, Sweep, check_input
from taskfarm.domain.inputs import MAX_AXES, input_lines

_AXES = st.dictionaries(
    st.from_regex(r"[a-z_][a-z0-9_]{0,5}", fullmatch=True),
    st.lists(
        st.integers()
        | st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=5),
        min_size=1,
        max_size=4,
    ),
    min_size=1,
    max_size=4,
)


@given(_AXES)
def test_a_sweep_numbers_its_combinations_as_nested_loops_do(axes: dict[str, list[object]]) -> None:
    sweep = Sweep.from_fields(axes)
    expected = [
        dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())
    ]

    assert sweep.size == len(expected)
    assert [sweep.combination(index) for index in range(sweep.size)] == expected
    assert Sweep.decoded(sweep.encoded()) == sweep


def test_a_sweep_of_a_billion_combinations_costs_its_axes() -> None:
    sweep = Sweep.from_fields({f"p{i}": list(range(10)) for i in range(9)})
    assert sweep.size == 10**9
    assert sweep.combination(123_456_789) == {f"p{i}": int(d) for i, d in enumerate("123456789")}
    assert len(sweep.encoded()) < 300


@pytest.mark.parametrize(
    ("sweep", "problem"),
    [
        ({}, "object of 1 to"),
        ([1, 2], "object of 1 to"),
        ({f"a{i}": [1] for i in range(MAX_AXES + 1)}, "object of 1 to"),
        ({"9lives": [1]}, "axis is named"),
        ({"a-b": [1]}, "axis is named"),
        ({"a": []}, "list of 1 to"),
        ({"a": 3}, "list of 1 to"),
        ({"a": [None]}, "strings, numbers or booleans"),
        ({"a": [[1]]}, "strings, numbers or booleans"),
        (
            {
                "a": list(range(10**4)),
                "b": list(range(10**4)),
                "c": list(range(10**4)),
                "d": list(range(10**4)),
            },
            "combinations, more than",
        ),
    ],
)
def test_a_sweep_that_would_not_do_says_why(sweep: object, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        Sweep.from_fields(sweep)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (None, "may not be null"),
        ("x" * (MAX_INPUT_BYTES + 1), f"at most {MAX_INPUT_BYTES} bytes"),
        ("a\x00b", "NUL"),
        ({"k": "\ud800"}, "lone surrogates"),
        (float("nan"), "JSON value"),
        ({1, 2}, "JSON value"),
    ],
)
def test_an_input_that_no_store_could_keep_is_refused(value: object, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem):
        check_input(value)


def test_the_inputs_of_a_file_are_its_lines_with_something_on_them() -> None:
    assert list(input_lines(["a\n", "\n", "  \r\n", " b c \r\n", "last"])) == ["a", " b c ", "last"]
