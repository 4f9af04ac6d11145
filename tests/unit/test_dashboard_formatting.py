"""How the dashboard writes numbers, paces and times."""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.entrypoints.http.formatting import count, duration, moment, pace, time_left
from taskfarm.entrypoints.summaries import percent
from taskfarm.throughput import Estimate

MINUTE = dt.timedelta(minutes=1)


@pytest.mark.parametrize(
    ("number", "written"), [(0, "0"), (999, "999"), (1000, "1,000"), (10**9, "1,000,000,000")]
)
def test_counts_separate_thousands(number: int, written: str) -> None:
    assert count(number) == written


@pytest.mark.parametrize(
    ("value", "written"),
    [
        (0.0, "0.0 %"),
        (0.00001, "< 0.1 %"),
        (0.1, "0.1 %"),
        (40.0, "40.0 %"),
        (33.33333, "33.3 %"),
        (66.66666, "66.6 %"),
        (99.99, "99.9 %"),
        (100.0, "100.0 %"),
    ],
)
def test_percentages_are_rounded_down_to_a_tenth(value: float, written: str) -> None:
    assert percent(value) == written


@pytest.mark.parametrize(
    ("seconds", "written"),
    [
        (0, "0 s"),
        (0.3, "under a second"),
        (45, "45 s"),
        (59.6, "1 min"),
        (60, "1 min"),
        (208, "3 min 28 s"),
        (3600, "1 h"),
        (12_000, "3 h 20 min"),
        (12_059, "3 h 20 min"),
        (2 * 86_400 + 4 * 3600 + 59, "2 d 4 h"),
        (400 * 86_400, "400 d"),
    ],
)
def test_durations_read_in_their_two_largest_units(seconds: float, written: str) -> None:
    assert duration(seconds) == written


@pytest.mark.parametrize(
    ("per_second", "written"),
    [
        (None, "measuring…"),
        (0.0, "0 tasks/min"),
        (2500.0, "2,500 tasks/s"),
        (12.5, "12.5 tasks/s"),
        (1.0, "1 task/s"),
        (0.5, "30 tasks/min"),
        (1 / 60, "1 task/min"),
        (0.01, "36 tasks/h"),
        (1 / 86_400, "1 task/day"),
    ],
)
def test_paces_read_per_second_minute_hour_or_day_whichever_is_at_least_one(
    per_second: float | None, written: str
) -> None:
    assert pace(Estimate(per_second, None, MINUTE)) == written


@pytest.mark.parametrize(
    ("estimate", "written"),
    [
        (Estimate(None, None, dt.timedelta(0)), "measuring…"),
        (Estimate(None, 0.0, dt.timedelta(0)), "finished"),
        (Estimate(3.0, 0.0, MINUTE), "finished"),
        (Estimate(0.0, None, 5 * MINUTE), "unknown: none finished in 5 min"),
        (Estimate(0.5, 208.0, MINUTE), "3 min 28 s"),
    ],
)
def test_time_left_says_finished_measuring_unknown_or_how_long(
    estimate: Estimate, written: str
) -> None:
    assert time_left(estimate) == written


def test_moments_are_written_in_utc() -> None:
    paris = dt.timezone(dt.timedelta(hours=1))
    assert moment(dt.datetime(2025, 3, 1, 13, 5, 9, 999, tzinfo=paris)) == "2025-03-01 12:05:09 UTC"
