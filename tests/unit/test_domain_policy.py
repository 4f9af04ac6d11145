"""The rules a run sets for silent workers: how long a lease lasts, how often a task is tried."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskfarm.domain import InvalidInput, RunPolicy
from taskfarm.domain.policy import MAX_ATTEMPTS, MAX_LEASE_SECONDS
from tests import strategies

NOW = dt.datetime(2025, 3, 1, 12, 0, 0, 123_456, tzinfo=dt.UTC)


@given(
    lease_seconds=strategies.positive_up_to(MAX_LEASE_SECONDS),
    max_attempts=strategies.positive_up_to(MAX_ATTEMPTS),
)
def test_policy_from_whole_numbers_in_bounds_keeps_them(
    lease_seconds: int, max_attempts: int
) -> None:
    policy = RunPolicy.from_fields(lease_seconds=lease_seconds, max_attempts=max_attempts)

    assert policy == RunPolicy(lease_seconds=lease_seconds, max_attempts=max_attempts)


def test_policy_from_absent_fields_has_no_lease_and_no_attempt_limit() -> None:
    assert RunPolicy.from_fields() == RunPolicy(lease_seconds=None, max_attempts=None)
    assert RunPolicy.from_fields(None, None) == RunPolicy()


@pytest.mark.parametrize(
    "lease_seconds",
    [0, -1, MAX_LEASE_SECONDS + 1, 10**400, True, False, 30.5, 0.0, float("inf"), "30", [30], {}],
)
def test_lease_that_is_not_a_whole_number_of_seconds_in_bounds_is_refused(
    lease_seconds: object,
) -> None:
    with pytest.raises(InvalidInput, match="leaseSeconds must be"):
        RunPolicy.from_fields(lease_seconds=lease_seconds)


@pytest.mark.parametrize(
    "max_attempts", [0, -1, MAX_ATTEMPTS + 1, True, False, 2.5, float("nan"), "3", [3]]
)
def test_attempt_limit_that_is_not_a_whole_number_in_bounds_is_refused(
    max_attempts: object,
) -> None:
    with pytest.raises(InvalidInput, match="maxAttempts must be"):
        RunPolicy.from_fields(max_attempts=max_attempts)


def test_policy_from_json_numbers_written_with_a_decimal_point_is_whole() -> None:
    # JSON does not tell 30 from 30.0: both are the same whole number of seconds.
    policy = RunPolicy.from_fields(lease_seconds=30.0, max_attempts=3.0)

    assert policy == RunPolicy(lease_seconds=30, max_attempts=3)
    assert (type(policy.lease_seconds), type(policy.max_attempts)) == (int, int)


@given(
    bad=strategies.not_positive_up_to(MAX_LEASE_SECONDS),
    good=st.none() | strategies.positive_up_to(MAX_ATTEMPTS),
)
def test_any_bad_lease_is_refused_whatever_the_attempt_limit(bad: object, good: int | None) -> None:
    with pytest.raises(InvalidInput, match="leaseSeconds"):
        RunPolicy.from_fields(lease_seconds=bad, max_attempts=good)


@given(
    bad=strategies.not_positive_up_to(MAX_ATTEMPTS),
    good=st.none() | strategies.positive_up_to(MAX_LEASE_SECONDS),
)
def test_any_bad_attempt_limit_is_refused_whatever_the_lease(bad: object, good: int | None) -> None:
    with pytest.raises(InvalidInput, match="maxAttempts"):
        RunPolicy.from_fields(lease_seconds=good, max_attempts=bad)


def test_longest_lease_is_a_week() -> None:
    assert RunPolicy.from_fields(lease_seconds=7 * 24 * 3600).lease_seconds == MAX_LEASE_SECONDS


@given(now=strategies.moments(), lease_seconds=strategies.positive_up_to(MAX_LEASE_SECONDS))
def test_lease_taken_now_runs_out_its_length_in_seconds_later(
    now: dt.datetime, lease_seconds: int
) -> None:
    expiry = RunPolicy(lease_seconds=lease_seconds).lease_expiry(now)

    assert expiry == now + dt.timedelta(seconds=lease_seconds)


def test_lease_expiry_keeps_the_microseconds_and_time_zone_of_now() -> None:
    expiry = RunPolicy(lease_seconds=90).lease_expiry(NOW)

    assert expiry == dt.datetime(2025, 3, 1, 12, 1, 30, 123_456, tzinfo=dt.UTC)
    assert expiry is not None
    assert expiry.tzinfo is dt.UTC


@given(now=strategies.moments(), max_attempts=st.none() | st.integers(1, 5))
def test_without_a_lease_nothing_ever_runs_out(now: dt.datetime, max_attempts: int | None) -> None:
    assert RunPolicy(lease_seconds=None, max_attempts=max_attempts).lease_expiry(now) is None


@given(attempts=st.integers(0, 10**9))
def test_without_an_attempt_limit_a_task_is_never_out_of_attempts(attempts: int) -> None:
    assert not RunPolicy(lease_seconds=30).out_of_attempts(attempts)


@given(max_attempts=st.integers(1, 100), attempts=st.integers(0, 200))
def test_task_is_out_of_attempts_once_claimed_as_often_as_the_run_allows(
    max_attempts: int, attempts: int
) -> None:
    policy = RunPolicy(lease_seconds=30, max_attempts=max_attempts)

    assert policy.out_of_attempts(attempts) == (attempts >= max_attempts)


@pytest.mark.parametrize(("attempts", "out"), [(0, False), (2, False), (3, True), (4, True)])
def test_attempt_limit_counts_the_last_allowed_attempt_as_used_up(attempts: int, out: bool) -> None:
    assert RunPolicy(max_attempts=3).out_of_attempts(attempts) is out
