"""The rules of one task: claiming, changing, leases running out, restarting."""

from __future__ import annotations

import datetime as dt

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from taskfarm.domain import (
    FULL_PROGRESS,
    Attempt,
    AttemptOutcome,
    Conflict,
    InvalidInput,
    RunPolicy,
    Task,
    TaskChange,
    TaskState,
    kept_attempt,
    percent_from_progress,
)
from tests import strategies

NOW = dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.UTC)
LEASE = RunPolicy(lease_seconds=60)
NO_LEASE = RunPolicy()
SECOND = dt.timedelta(seconds=1)


def _renewed(policy: RunPolicy, now: dt.datetime) -> dt.datetime | None:
    return None if policy.lease_seconds is None else now + policy.lease_seconds * SECOND


# Claims


@given(
    task=strategies.tasks(),
    worker=strategies.worker_uuids(),
    now=strategies.moments(),
    policy=strategies.run_policies(),
)
def test_claimed_task_is_computing_for_its_worker_and_keeps_its_progress(
    task: Task, worker: str, now: dt.datetime, policy: RunPolicy
) -> None:
    claimed = task.claimed_by(worker, now, policy)

    assert (claimed.index, claimed.state, claimed.progress, claimed.worker) == (
        task.index,
        TaskState.COMPUTING,
        task.progress,
        worker,
    )


@given(task=strategies.tasks(), now=strategies.moments(), policy=strategies.run_policies())
def test_every_claim_counts_one_more_attempt(
    task: Task, now: dt.datetime, policy: RunPolicy
) -> None:
    assert task.claimed_by("w", now, policy).attempts == task.attempts + 1


@given(
    task=strategies.tasks(),
    now=strategies.moments(),
    lease_seconds=strategies.positive_up_to(7 * 24 * 3600),
)
def test_claim_starts_a_lease_of_the_run_length_from_now(
    task: Task, now: dt.datetime, lease_seconds: int
) -> None:
    claimed = task.claimed_by("w", now, RunPolicy(lease_seconds=lease_seconds))

    assert claimed.lease_expires == now + dt.timedelta(seconds=lease_seconds)


@given(task=strategies.tasks(), now=strategies.moments())
def test_claim_in_a_run_without_lease_starts_none(task: Task, now: dt.datetime) -> None:
    assert task.claimed_by("w", now, NO_LEASE).lease_expires is None


def test_untouched_task_is_waiting_at_zero_for_nobody_never_tried() -> None:
    assert Task.untouched(7) == Task(
        index=7, state=TaskState.WAITING, progress=0, worker=None, attempts=0, lease_expires=None
    )
    assert Task.untouched(7).percent_completed == 0.0


def test_requeued_task_keeps_progress_to_resume_from_when_claimed_again() -> None:
    task = (
        Task.untouched(3).claimed_by("a", NOW, LEASE).changed(TaskChange(progress=42), NOW, LEASE)
    )
    requeued = task.changed(TaskChange(state=TaskState.WAITING), NOW, LEASE)

    later = NOW + 10 * SECOND
    assert requeued.claimed_by("b", later, LEASE) == Task(
        3,
        TaskState.COMPUTING,
        42,
        "b",
        attempts=1,
        lease_expires=later + 60 * SECOND,
        started=later,
    )


# Changes


@given(
    task=strategies.tasks(),
    progress=st.none() | strategies.progresses(),
    state=st.sampled_from([TaskState.WAITING, TaskState.FAILED]),
    policy=strategies.run_policies(),
)
def test_task_changed_to_waiting_or_failed_belongs_to_nobody_and_has_no_lease(
    task: Task, progress: int | None, state: TaskState, policy: RunPolicy
) -> None:
    changed = task.changed(TaskChange(progress=progress, state=state), NOW, policy)

    assert changed == attrs.evolve(
        task,
        state=changed.state,
        progress=task.progress if progress is None else progress,
        worker=None,
        attempts=changed.attempts,
        lease_expires=None,
    )
    assert changed.state in (state, TaskState.WAITING)


# Attempts


@given(task=strategies.tasks(state=st.just(TaskState.COMPUTING)), policy=strategies.run_policies())
def test_computing_task_handed_back_gives_its_attempt_back(task: Task, policy: RunPolicy) -> None:
    handed_back = task.changed(TaskChange(state=TaskState.WAITING), NOW, policy)

    assert (handed_back.state, handed_back.attempts) == (
        TaskState.WAITING,
        max(task.attempts - 1, 0),
    )


@pytest.mark.parametrize(
    ("max_attempts", "attempts", "state"),
    [
        (3, 1, TaskState.WAITING),
        (3, 2, TaskState.WAITING),
        (3, 3, TaskState.FAILED),
        (1, 1, TaskState.FAILED),
        (None, 1, TaskState.FAILED),
    ],
)
def test_failed_attempt_goes_back_to_the_queue_while_the_run_allows_more(
    max_attempts: int | None, attempts: int, state: TaskState
) -> None:
    policy = RunPolicy(lease_seconds=60, max_attempts=max_attempts)
    task = attrs.evolve(Task.untouched(0).claimed_by("w", NOW, policy), attempts=attempts)

    failed = task.changed(TaskChange(state=TaskState.FAILED), NOW, policy, by="w")

    assert (failed.state, failed.attempts, failed.worker) == (state, attempts, None)


@pytest.mark.parametrize("state", [TaskState.WAITING, TaskState.DONE])
def test_task_not_computing_set_to_failed_fails_whatever_its_attempts(state: TaskState) -> None:
    task = Task(0, state, attempts=1)

    failed = task.changed(TaskChange(state=TaskState.FAILED), NOW, RunPolicy(max_attempts=3))

    assert (failed.state, failed.attempts) == (TaskState.FAILED, 1)


def test_an_attempt_ended_by_a_change_is_recorded_with_its_worker_times_and_command() -> None:
    claimed = Task.untouched(4).claimed_by("w", NOW, LEASE)
    change = TaskChange(state=TaskState.FAILED, exit_code=7, error="boom\n")

    ended = claimed.attempt_ended(change, NOW + SECOND, by="w")

    assert ended == Attempt(AttemptOutcome.FAILED, "w", NOW, NOW + SECOND, 7, "boom\n")


@pytest.mark.parametrize(
    ("state", "outcome"),
    [
        (TaskState.DONE, AttemptOutcome.DONE),
        (TaskState.WAITING, AttemptOutcome.HANDED_BACK),
        (TaskState.FAILED, AttemptOutcome.FAILED),
    ],
)
def test_leaving_computing_ends_an_attempt(state: TaskState, outcome: AttemptOutcome) -> None:
    claimed = Task.untouched(0).claimed_by("w", NOW, LEASE)

    ended = claimed.attempt_ended(TaskChange(state=state), NOW, by=None)

    assert ended is not None
    assert (ended.outcome, ended.worker, ended.started) == (outcome, "w", NOW)


@pytest.mark.parametrize(
    "change",
    [TaskChange(progress=5), TaskChange(), TaskChange(state=TaskState.COMPUTING)],
)
def test_changes_that_keep_a_task_computing_end_no_attempt(change: TaskChange) -> None:
    claimed = Task.untouched(0).claimed_by("w", NOW, LEASE)

    assert claimed.attempt_ended(change, NOW) is None


def test_a_task_not_computing_ends_no_attempt_unless_told_how_a_command_went() -> None:
    waiting = Task(0, attempts=1, started=NOW)

    assert waiting.attempt_ended(TaskChange(state=TaskState.FAILED), NOW) is None
    told = waiting.attempt_ended(TaskChange(state=TaskState.FAILED, error="disk full"), NOW, "p")
    assert told == Attempt(AttemptOutcome.FAILED, "p", NOW, NOW, None, "disk full")


def test_lost_attempt_ended_when_its_lease_did() -> None:
    claimed = Task.untouched(0).claimed_by("w", NOW, LEASE)

    assert claimed.attempt_lost() == Attempt(
        AttemptOutcome.LOST, "w", NOW, NOW + 60 * SECOND, None, None
    )


def test_a_success_is_kept_only_over_an_earlier_record() -> None:
    failed = Attempt(AttemptOutcome.FAILED, "w", NOW, NOW, 1, "e")
    done = Attempt(AttemptOutcome.DONE, "v", NOW, NOW)

    assert kept_attempt(None, done) is None
    assert kept_attempt(failed, done) == done
    assert kept_attempt(None, failed) == failed
    assert kept_attempt(failed, None) == failed


@given(task=strategies.tasks())
def test_retried_task_waits_from_the_start_with_fresh_attempts(task: Task) -> None:
    retried = task.retried()

    assert retried == attrs.evolve(
        task,
        state=TaskState.WAITING,
        progress=0,
        worker=None,
        attempts=0,
        lease_expires=None,
    )
    assert task.retryable is (task.state in (TaskState.FAILED, TaskState.DONE))


def test_a_task_waits_at_the_back_once_it_used_an_attempt_and_at_the_front_otherwise() -> None:
    policy = RunPolicy(lease_seconds=60, max_attempts=3)
    claimed = Task.untouched(0).claimed_by("w", NOW, policy)
    failed = claimed.changed(TaskChange(state=TaskState.FAILED), NOW, policy)
    handed_back = claimed.changed(TaskChange(state=TaskState.WAITING), NOW, policy)
    lost = claimed.expired(policy)
    back_after_failing = failed.claimed_by("v", NOW, policy).changed(
        TaskChange(state=TaskState.WAITING), NOW, policy
    )

    assert [task.deferred for task in (failed, lost, back_after_failing)] == [True] * 3
    assert [task.deferred for task in (handed_back, failed.retried(), claimed)] == [False] * 3
    assert not Task.untouched(1).deferred


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"exit_code": 7}, "send them with status done, failed or waiting"),
        ({"status": "computing", "error": "x"}, "send them with status done"),
        ({"status": "failed", "exit_code": 1.5}, "exitCode must be a whole number"),
        ({"status": "failed", "exit_code": 2**32}, "exitCode must be between"),
        ({"status": "failed", "error": 3}, "error must be a string"),
        ({"status": "failed", "error": "a\x00b"}, "without NUL"),
        ({"status": "failed", "error": "é" * 2049}, "at most 4096 bytes of UTF-8, not 4098"),
    ],
)
def test_what_a_command_did_is_checked(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        TaskChange.from_fields(**fields)


def test_an_error_of_4096_bytes_is_kept_whole() -> None:
    error = "é" * 2048

    change = TaskChange.from_fields(status="failed", exit_code=-9, error=error)

    assert (change.exit_code, change.error) == (-9, error)


@given(task=strategies.tasks(), policy=strategies.run_policies())
def test_task_changed_to_done_keeps_its_worker_and_drops_its_lease(
    task: Task, policy: RunPolicy
) -> None:
    changed = task.changed(TaskChange(state=TaskState.DONE), NOW, policy)

    assert changed == attrs.evolve(task, state=TaskState.DONE, lease_expires=None)


@given(task=strategies.tasks(), policy=strategies.run_policies())
def test_task_changed_to_computing_keeps_its_worker_and_renews_its_lease(
    task: Task, policy: RunPolicy
) -> None:
    changed = task.changed(TaskChange(state=TaskState.COMPUTING), NOW, policy)

    assert changed == attrs.evolve(
        task, state=TaskState.COMPUTING, lease_expires=_renewed(policy, NOW)
    )


@given(task=strategies.tasks(), progress=strategies.progresses(), policy=strategies.run_policies())
def test_progress_change_leaves_state_worker_and_attempts_alone(
    task: Task, progress: int, policy: RunPolicy
) -> None:
    changed = task.changed(TaskChange(progress=progress), NOW, policy)

    assert (changed.state, changed.worker, changed.attempts) == (
        task.state,
        task.worker,
        task.attempts,
    )
    assert changed.progress == progress


@given(task=strategies.tasks(), policy=strategies.run_policies())
def test_empty_change_renews_the_lease_of_a_computing_task_and_is_refused_for_others(
    task: Task, policy: RunPolicy
) -> None:
    if task.state is TaskState.COMPUTING:
        changed = task.changed(TaskChange(), NOW, policy)
        assert changed == attrs.evolve(task, lease_expires=_renewed(policy, NOW))
    else:
        with pytest.raises(Conflict, match="not computing: it has no lease to renew"):
            task.changed(TaskChange(), NOW, policy)


@given(task=strategies.held_tasks(), change=strategies.task_changes())
def test_change_by_the_worker_holding_the_task_is_the_change_by_a_person(
    task: Task, change: TaskChange
) -> None:
    assert task.changed(change, NOW, LEASE, by=task.worker) == task.changed(change, NOW, LEASE)


@given(
    task=strategies.held_tasks(),
    finished=st.booleans(),
    change=strategies.task_changes(),
    other=strategies.worker_uuids(),
)
def test_change_by_a_worker_the_task_was_taken_from_is_a_conflict(
    task: Task, finished: bool, change: TaskChange, other: str
) -> None:
    assume(task.worker != other)
    if finished:
        task = attrs.evolve(task, state=TaskState.DONE, lease_expires=None)

    with pytest.raises(Conflict, match=f"task {task.index} now belongs to worker"):
        task.changed(change, NOW, LEASE, by=other)


@given(
    task=strategies.tasks(),
    progress=st.none() | strategies.progresses(),
    by=strategies.worker_uuids(),
)
def test_worker_may_change_a_task_nobody_holds_and_takes_it_if_computing_or_done(
    task: Task, progress: int | None, by: str
) -> None:
    assume(task.worker is None)
    change = TaskChange(progress=progress)
    assume(not change.renews_only or task.state is TaskState.COMPUTING)

    changed = task.changed(change, NOW, LEASE, by=by)

    assert attrs.evolve(changed, worker=None) == task.changed(change, NOW, LEASE)
    held = task.state in (TaskState.COMPUTING, TaskState.DONE)
    assert changed.worker == (by if held else None)


@given(task=strategies.tasks(), by=strategies.worker_uuids())
def test_worker_setting_computing_a_task_nobody_holds_takes_it(task: Task, by: str) -> None:
    assume(task.worker is None)

    changed = task.changed(TaskChange(state=TaskState.COMPUTING), NOW, LEASE, by=by)

    assert (changed.state, changed.worker, changed.lease_expires) == (
        TaskState.COMPUTING,
        by,
        NOW + 60 * SECOND,
    )
    assert changed.attempts == task.attempts


def test_heartbeat_of_the_holder_moves_the_end_of_the_lease_to_now_plus_the_lease() -> None:
    claimed = Task.untouched(0).claimed_by("w", NOW, LEASE)
    later = NOW + 59 * SECOND

    renewed = claimed.changed(TaskChange(), later, LEASE, by="w")

    assert renewed == attrs.evolve(claimed, lease_expires=later + 60 * SECOND)
    assert not renewed.lease_has_expired(NOW + 60 * SECOND)


def test_task_finished_while_nobody_held_it_refuses_the_next_worker_it_was_taken_from() -> None:
    # Worker a's lease runs out; b claims the task and its lease runs out too; a finishes it.
    policy = RunPolicy(lease_seconds=60)
    task = Task.untouched(0).claimed_by("a", NOW, policy).expired(policy)
    task = task.claimed_by("b", NOW + 61 * SECOND, policy).expired(policy)
    done = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)

    finished_by_a = task.changed(done, NOW + 200 * SECOND, policy, by="a")

    assert finished_by_a.worker == "a"
    with pytest.raises(Conflict):
        finished_by_a.changed(done, NOW + 201 * SECOND, policy, by="b")


# Leases running out


@given(task=strategies.held_tasks())
def test_lease_expires_at_the_moment_it_ends_not_a_microsecond_before(task: Task) -> None:
    assume(task.lease_expires is not None)
    end = task.lease_expires
    assert end is not None

    assert not task.lease_has_expired(end - dt.timedelta(microseconds=1))
    assert task.lease_has_expired(end)
    assert task.lease_has_expired(end + dt.timedelta(days=365))


@given(task=strategies.tasks(), now=strategies.moments())
def test_only_a_computing_task_with_a_lease_can_have_its_lease_expire(
    task: Task, now: dt.datetime
) -> None:
    if task.state is not TaskState.COMPUTING or task.lease_expires is None:
        assert not task.lease_has_expired(now)


@given(task=strategies.tasks(state=st.sampled_from([TaskState.WAITING, TaskState.DONE])))
def test_waiting_or_done_task_never_expires_even_with_a_stale_lease(task: Task) -> None:
    stale = attrs.evolve(task, lease_expires=NOW)

    assert not stale.lease_has_expired(NOW + dt.timedelta(days=1))


@given(task=strategies.held_tasks(), max_attempts=st.none() | st.integers(1, 10))
def test_expired_task_goes_back_to_waiting_for_nobody_while_it_has_attempts_left(
    task: Task, max_attempts: int | None
) -> None:
    assume(max_attempts is None or task.attempts < max_attempts)
    policy = RunPolicy(lease_seconds=60, max_attempts=max_attempts)

    expired = task.expired(policy)

    assert expired == attrs.evolve(task, state=TaskState.WAITING, worker=None, lease_expires=None)


@given(task=strategies.held_tasks(), max_attempts=st.integers(1, 10))
def test_expired_task_fails_once_claimed_as_often_as_the_run_allows(
    task: Task, max_attempts: int
) -> None:
    assume(task.attempts >= max_attempts)
    policy = RunPolicy(lease_seconds=60, max_attempts=max_attempts)

    expired = task.expired(policy)

    assert expired == attrs.evolve(task, state=TaskState.FAILED, worker=None, lease_expires=None)


@pytest.mark.parametrize("max_attempts", [1, 2, 3])
def test_task_fails_when_the_lease_of_its_last_allowed_claim_runs_out(max_attempts: int) -> None:
    policy = RunPolicy(lease_seconds=60, max_attempts=max_attempts)
    task = Task.untouched(0)
    states = []
    for attempt in range(max_attempts):
        now = NOW + attempt * 100 * SECOND
        task = task.claimed_by(f"w{attempt}", now, policy)
        assert task.lease_has_expired(now + 60 * SECOND)
        task = task.expired(policy)
        states.append(task.state)

    assert states == [TaskState.WAITING] * (max_attempts - 1) + [TaskState.FAILED]
    assert task.attempts == max_attempts


# Restarts


@given(task=strategies.tasks())
def test_full_restart_makes_any_task_untouched(task: Task) -> None:
    assert task.restarted(everything=True) == Task.untouched(task.index)


@given(task=strategies.tasks(index=st.just(5)), progress=st.integers(0, FULL_PROGRESS - 1))
def test_partial_restart_requeues_unfinished_task_with_its_progress_and_no_attempts(
    task: Task, progress: int
) -> None:
    unfinished = attrs.evolve(task, progress=progress)

    assert unfinished.restarted(everything=False) == Task(
        5, TaskState.WAITING, progress, started=task.started
    )


@pytest.mark.parametrize("state", [TaskState.WAITING, TaskState.COMPUTING, TaskState.DONE])
def test_partial_restart_keeps_task_at_exactly_one_hundred_percent(state: TaskState) -> None:
    worker = None if state is TaskState.WAITING else "w"
    lease = NOW if state is TaskState.COMPUTING else None
    finished = Task(1, state, FULL_PROGRESS, worker, attempts=2, lease_expires=lease)

    assert finished.restarted(everything=False) == finished


@given(task=strategies.tasks(state=st.just(TaskState.FAILED)))
def test_partial_restart_brings_a_failed_task_back_with_its_progress_even_when_full(
    task: Task,
) -> None:
    assert task.restarted(everything=False) == Task(
        task.index, TaskState.WAITING, task.progress, started=task.started
    )


def test_restarted_failed_task_may_be_claimed_as_often_as_the_run_allows_again() -> None:
    policy = RunPolicy(lease_seconds=60, max_attempts=1)
    failed = Task.untouched(0).claimed_by("a", NOW, policy).expired(policy)
    assert failed.state is TaskState.FAILED

    again = failed.restarted(everything=False).claimed_by("b", NOW + 100 * SECOND, policy)

    assert (again.state, again.worker, again.attempts) == (TaskState.COMPUTING, "b", 1)
    assert again.expired(policy).state is TaskState.FAILED


def test_partial_restart_requeues_task_just_short_of_one_hundred_percent() -> None:
    almost = Task(1, TaskState.DONE, FULL_PROGRESS - 1, "w", attempts=3)

    assert almost.restarted(everything=False) == Task(1, TaskState.WAITING, FULL_PROGRESS - 1)


@pytest.mark.parametrize("state", list(TaskState))
def test_state_parses_from_its_published_name(state: TaskState) -> None:
    assert TaskState.parse(state.value) is state


@pytest.mark.parametrize(
    "value", ["DONE", "Done", " done", "finished", "", None, 1, ["done"], True]
)
def test_unknown_state_is_refused(value: object) -> None:
    with pytest.raises(
        InvalidInput, match="status must be one of waiting, computing, done, failed, not"
    ):
        TaskState.parse(value)


@given(percent=strategies.percents(), status=strategies.statuses())
def test_change_from_request_fields_converts_percent_and_status(
    percent: float, status: str
) -> None:
    change = TaskChange.from_fields(percent_completed=percent, status=status)

    assert change.state is TaskState(status)
    assert change.progress is not None
    assert abs(percent_from_progress(change.progress) - percent) <= 1e-6


def test_change_from_absent_fields_changes_nothing() -> None:
    assert TaskChange.from_fields() == TaskChange(progress=None, state=None)


@pytest.mark.parametrize(
    ("percent", "status"), [(101, None), (None, "finished"), ("50", None), (None, 3)]
)
def test_change_with_a_bad_field_is_refused(percent: object, status: object) -> None:
    with pytest.raises(InvalidInput):
        TaskChange.from_fields(percent_completed=percent, status=status)
