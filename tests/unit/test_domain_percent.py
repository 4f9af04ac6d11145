"""Percentages from the outside world, and the exact units progress is counted in."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.domain import (
    FULL_PROGRESS,
    InvalidInput,
    percent_from_progress,
    progress_from_percent,
)
from tests import strategies


@pytest.mark.parametrize(
    ("percent", "progress"),
    [(0, 0), (0.0, 0), (100, FULL_PROGRESS), (100.0, FULL_PROGRESS), (12.5, 12_500_000), (1e-6, 1)],
)
def test_percent_becomes_millionths_of_a_percent(percent: float, progress: int) -> None:
    assert progress_from_percent(percent) == progress


@pytest.mark.parametrize(
    "percent",
    [
        True,
        False,
        math.nan,
        math.inf,
        -math.inf,
        -1,
        -1e-9,
        100.000001,
        101,
        "50",
        "",
        None,
        [50],
    ],
)
def test_percent_that_is_not_a_number_from_0_to_100_is_refused(percent: object) -> None:
    with pytest.raises(InvalidInput, match="percentCompleted"):
        progress_from_percent(percent)


@given(percent=strategies.invalid_percents())
def test_any_percent_outside_0_to_100_is_refused(percent: object) -> None:
    with pytest.raises(InvalidInput):
        progress_from_percent(percent)


def test_percent_given_as_a_huge_whole_number_is_refused() -> None:
    # JSON parsers hand over integers of any size; this one overflows a float.
    with pytest.raises(InvalidInput):
        progress_from_percent(10**400)


@given(percent=strategies.percents())
def test_percent_survives_the_round_trip_to_within_a_millionth(percent: float) -> None:
    progress = progress_from_percent(percent)

    assert 0 <= progress <= FULL_PROGRESS
    assert abs(percent_from_progress(progress) - percent) <= 1e-6


@given(progress=st.integers(0, FULL_PROGRESS))
def test_progress_survives_the_round_trip_exactly(progress: int) -> None:
    assert progress_from_percent(percent_from_progress(progress)) == progress
