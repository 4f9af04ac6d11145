"""The pace of runs and their time to finish, from looks at their done counter over time."""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.domain import Run, RunCounters
from taskfarm.throughput import (
    MAX_SAMPLES,
    MIN_SPAN,
    WINDOW,
    Estimate,
    Sample,
    ThroughputMeter,
    estimate,
)
from tests.fakes import FakeClock

START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
SECOND = dt.timedelta(seconds=1)


def at(seconds: float, done: int) -> Sample:
    return Sample(START + seconds * SECOND, done)


def run(done: int, num_tasks: int = 1000, failed: int = 0, uuid: str = "run") -> Run:
    return Run(1, uuid, num_tasks, counters=RunCounters(done=done, failed=failed))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def meter(clock: FakeClock) -> ThroughputMeter:
    return ThroughputMeter(clock)


# The arithmetic


def test_the_pace_is_the_tasks_finished_between_first_and_last_sample_per_second() -> None:
    result = estimate([at(0, 100), at(30, 130), at(60, 220)], remaining=600)
    assert result == Estimate(tasks_per_second=2.0, seconds_left=300.0, span=60 * SECOND)
    assert not result.measuring


def test_no_sample_or_one_is_still_measuring() -> None:
    assert estimate([], remaining=10) == Estimate(None, None, dt.timedelta(0))
    assert estimate([at(0, 5)], remaining=10).measuring


def test_samples_closer_than_the_shortest_span_are_still_measuring() -> None:
    seconds = MIN_SPAN.total_seconds()
    assert estimate([at(0, 0), at(seconds - 0.001, 50)], remaining=10).measuring
    assert estimate([at(0, 0), at(seconds, 50)], remaining=10).tasks_per_second == pytest.approx(
        50 / seconds
    )


def test_a_run_that_finished_nothing_lately_has_no_end_in_sight() -> None:
    assert estimate([at(0, 40), at(60, 40)], remaining=10) == Estimate(0.0, None, 60 * SECOND)


def test_a_run_with_nothing_left_to_finish_is_done_now_whatever_its_pace() -> None:
    assert estimate([at(0, 10), at(60, 10)], remaining=0).seconds_left == 0.0
    assert estimate([at(0, 10)], remaining=0) == Estimate(None, 0.0, dt.timedelta(0))


# Sampling


def test_the_first_look_at_a_run_is_measuring(meter: ThroughputMeter) -> None:
    assert meter.observe(run(done=10)) == Estimate(None, None, dt.timedelta(0))


def test_a_later_look_measures_the_pace_since_the_first(
    meter: ThroughputMeter, clock: FakeClock
) -> None:
    meter.observe(run(done=10))
    clock.advance(10 * SECOND)
    assert meter.observe(run(done=60)) == Estimate(5.0, 188.0, 10 * SECOND)


def test_failed_tasks_are_not_counted_as_left_to_finish(
    meter: ThroughputMeter, clock: FakeClock
) -> None:
    meter.observe(run(done=0, num_tasks=100, failed=50))
    clock.advance(10 * SECOND)
    assert meter.observe(run(done=10, num_tasks=100, failed=50)).seconds_left == 40.0


def test_runs_are_measured_apart(meter: ThroughputMeter, clock: FakeClock) -> None:
    meter.observe(run(done=0, uuid="fast"))
    meter.observe(run(done=0, uuid="slow"))
    clock.advance(10 * SECOND)
    assert meter.observe(run(done=100, uuid="fast")).tasks_per_second == 10.0
    assert meter.observe(run(done=1, uuid="slow")).tasks_per_second == 0.1
    assert meter.observe(run(done=0, uuid="new")).measuring


def test_the_pace_follows_the_last_window_only(meter: ThroughputMeter, clock: FakeClock) -> None:
    meter.observe(run(done=0))
    for minute in range(1, 21):
        clock.advance(60 * SECOND)
        # 1000 tasks a minute for 10 minutes, then 100 a minute
        result = meter.observe(run(done=1000 * min(minute, 10) + 100 * max(minute - 10, 0)))
    assert result.span == WINDOW
    assert result.tasks_per_second == pytest.approx(100 / 60)


def test_a_restarted_run_is_measured_afresh(meter: ThroughputMeter, clock: FakeClock) -> None:
    meter.observe(run(done=500))
    clock.advance(10 * SECOND)
    meter.observe(run(done=600))
    clock.advance(10 * SECOND)
    assert meter.observe(run(done=0)).measuring
    clock.advance(10 * SECOND)
    assert meter.observe(run(done=30)).tasks_per_second == 3.0


def test_many_looks_keep_few_samples_spanning_the_whole_window(
    meter: ThroughputMeter, clock: FakeClock
) -> None:
    looks = 0
    done = 0
    while clock.now() - START < 3 * WINDOW:
        clock.advance(SECOND / 4)
        done += 1
        looks += 1
        result = meter.observe(run(done=done))
    samples = meter._samples["run"]
    assert looks > 10 * MAX_SAMPLES
    assert len(samples) <= MAX_SAMPLES + 2
    assert result.span >= WINDOW - WINDOW / MAX_SAMPLES
    assert result.tasks_per_second == pytest.approx(4.0)


def test_a_run_nobody_looked_at_for_a_window_is_measured_afresh(
    meter: ThroughputMeter, clock: FakeClock
) -> None:
    meter.observe(run(done=0))
    clock.advance(WINDOW + SECOND)
    assert meter.observe(run(done=1000)).measuring


def test_only_so_many_runs_are_measured_at_once_the_least_recently_looked_at_go(
    clock: FakeClock,
) -> None:
    meter = ThroughputMeter(clock, max_runs=2)
    for name in ("a", "b", "c"):
        meter.observe(run(done=0, uuid=name))
    clock.advance(10 * SECOND)
    assert not meter.observe(run(done=10, uuid="c")).measuring
    assert meter.observe(run(done=10, uuid="a")).measuring
