"""How far ahead `taskfarm work` claims, and how soon it reports, by how long tasks take."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.client.api import MAX_CLAIM_COUNT
from taskfarm.client.pace import (
    MOST_AHEAD_PER_SLOT,
    SHORT_TASK_SECONDS,
    Pace,
)


def _after(slots: int, *seconds: float) -> Pace:
    pace = Pace(slots)
    for each in seconds:
        pace.finished(each)
    return pace


def test_nothing_is_claimed_ahead_before_a_task_has_shown_how_long_tasks_take() -> None:
    pace = Pace(4)
    assert (pace.ahead(), pace.refill_below(), pace.report_at()) == (0, 0, 4)


def test_long_tasks_are_not_claimed_ahead() -> None:
    assert _after(4, SHORT_TASK_SECONDS).ahead() == 0
    assert _after(4, 60.0).report_at() == 4


@pytest.mark.parametrize(
    ("seconds", "per_slot"),
    [
        (0.0, MOST_AHEAD_PER_SLOT),
        (1e-320, MOST_AHEAD_PER_SLOT),
        (0.001, MOST_AHEAD_PER_SLOT),
        (0.05, 10),
        (0.4, 1),
        (1.9, 1),
    ],
)
def test_short_tasks_are_claimed_ahead_for_about_half_a_second_per_slot(
    seconds: float, per_slot: int
) -> None:
    pace = _after(4, seconds)
    assert pace.ahead() == 4 * per_slot
    # Claimed again with a quarter left, so that the answer is back before they run out.
    assert pace.refill_below() == per_slot
    assert pace.report_at() == max(4, 4 * per_slot)


def test_the_mean_follows_the_tasks_as_they_get_longer() -> None:
    pace = _after(2, *[0.01] * 5)
    short = pace.ahead()
    for _ in range(30):
        pace.finished(5.0)
    assert short == 2 * MOST_AHEAD_PER_SLOT
    assert pace.ahead() == 0


@given(
    slots=st.integers(1, 2000),
    seconds=st.lists(st.floats(0, 10 * SHORT_TASK_SECONDS), min_size=1, max_size=5),
)
def test_a_claim_and_a_report_stay_within_what_the_server_allows(
    slots: int, seconds: list[float]
) -> None:
    pace = _after(slots, *seconds)
    assert 0 <= pace.refill_below() <= pace.ahead()
    assert pace.ahead() <= max(0, MAX_CLAIM_COUNT - slots)
    assert 1 <= pace.report_at() <= MAX_CLAIM_COUNT
