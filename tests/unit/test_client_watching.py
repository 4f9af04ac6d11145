"""The progress line of `taskfarm runs watch`: bar, rate and time left."""

from __future__ import annotations

import pytest

from taskfarm.client.watching import Progress, RateWindow, progress_line


def progress(done: int, percent: float, computing: int = 0, failed: int = 0) -> Progress:
    return Progress(
        num_tasks=100,
        percent_done=percent,
        num_done=done,
        num_computing=computing,
        num_failed=failed,
    )


def test_the_rate_is_measured_over_the_last_window() -> None:
    rates = RateWindow(seconds=10)
    assert rates.rate() is None
    rates.add(0.0, 0.0)
    assert rates.rate() is None
    rates.add(5.0, 50.0)
    assert rates.rate() == 10.0
    # Far past the window, only the last sample before it and the ones since still count.
    rates.add(100.0, 60.0)
    rates.add(110.0, 80.0)
    assert rates.rate() == 2.0


def test_a_restarted_run_starts_a_new_measure() -> None:
    rates = RateWindow()
    rates.add(0.0, 10.0)
    rates.add(1.0, 20.0)
    rates.add(2.0, 0.0)
    assert rates.rate() is None


def test_a_run_is_finished_when_every_task_is_done_or_failed() -> None:
    assert progress(done=98, percent=99.0, failed=2).finished
    assert not progress(done=98, percent=99.0, computing=2).finished


def test_the_line_shows_the_bar_counts_rate_and_time_left() -> None:
    line = progress_line(progress(done=40, percent=45.0, computing=3, failed=1), rate=0.5)
    assert line == (
        "[##############----------------]  45.0%  40/100 done  3 computing  1 failed"
        "  30.0 tasks/min  ETA 0:01:50"
    )


@pytest.mark.parametrize(
    ("rate", "shown"),
    [
        (None, "-- tasks/s  ETA --"),
        (0.0, "-- tasks/s  ETA --"),
        (25.0, "25.0 tasks/s  ETA 0:00:04"),
        (0.01, "36.0 tasks/h  ETA 2:46:40"),
        (1e-5, "0.9 tasks/day  ETA 115 days, 17:46:40"),
    ],
)
def test_rates_are_shown_in_a_unit_that_reads_well(rate: float | None, shown: str) -> None:
    assert progress_line(progress(done=0, percent=0.0), rate).endswith("computing  " + shown)


def test_a_finished_run_shows_no_rate() -> None:
    assert progress_line(progress(done=100, percent=100.0), rate=3.0) == (
        "[##############################] 100.0%  100/100 done  0 computing"
    )
