"""Short forms of long text for tables."""

from __future__ import annotations

import pytest

from taskfarm.entrypoints.summaries import last_line


@pytest.mark.parametrize(
    ("text", "line"),
    [
        (None, None),
        ("", None),
        ("\n  \n", None),
        ("one\ntwo\n\n", "two"),
        ("  indented reason  \n", "indented reason"),
        ("x" * 80, "x" * 71 + "…"),
        ("x" * 72, "x" * 72),
    ],
)
def test_the_last_line_with_something_on_it_cut_to_its_width(
    text: str | None, line: str | None
) -> None:
    assert last_line(text) == line
