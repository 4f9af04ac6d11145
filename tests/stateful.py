"""A state machine that drives a store and an independent model of the rules side by side.

The model is a plain statement of the rules, leases and attempts included, written without the
domain's `Task` and `RunPolicy` methods or `next_claim`, so that the memory store, and every other
store after it, is checked against something other than itself.
"""

from __future__ import annotations

import bisect
import collections
import datetime as dt
import uuid
from collections.abc import Callable

import attrs
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
)

from taskfarm.domain import (
    Attempt,
    Conflict,
    RunCounters,
    RunNotFound,
    RunPolicy,
    Task,
    TaskChange,
    TaskNotFound,
    TaskReport,
    TaskState,
    Wanted,
    Worker,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.ports import Storage
from tests import strategies
from tests.claiming import claim_batch, claim_tasks, leave_loops

#: 100 percent, in the millionths of a percent that progress is counted in.
_FULL = 100_000_000
_FINISHED = TaskChange(_FULL, TaskState.DONE)
_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@attrs.frozen
class ModelTask:
    """A task of the model; one nobody touched is waiting at zero, for nobody, never tried."""

    state: str = "waiting"
    progress: int = 0
    worker: str | None = None
    attempts: int = 0
    lease_expires: dt.datetime | None = None
    started: dt.datetime | None = None


#: How the last attempt at a task ended: outcome, worker, start, end, exit status, error.
ModelAttempt = tuple[
    str, str | None, dt.datetime | None, dt.datetime | None, int | None, str | None
]

#: The outcome of an attempt ended by setting its task to each state.
_ENDED_AS = {"done": "done", "failed": "failed", "waiting": "handed-back"}


@attrs.define
class ModelRun:
    """One run: its lease and attempt limit, the tasks someone touched, the frontier, the
    requeued indices, in order, and the record of each task's last attempt that is kept."""

    num_tasks: int
    lease_seconds: int | None = None
    max_attempts: int | None = None
    tasks: dict[int, ModelTask] = attrs.Factory(dict)
    frontier: int = 0
    requeued: list[int] = attrs.Factory(list)
    attempts: dict[int, ModelAttempt] = attrs.Factory(dict)

    def task(self, index: int) -> ModelTask:
        return self.tasks.get(index, ModelTask())

    def lease_from(self, now: dt.datetime) -> dt.datetime | None:
        return (
            None if self.lease_seconds is None else now + dt.timedelta(seconds=self.lease_seconds)
        )

    def claim(self, worker: str, now: dt.datetime) -> int | None:
        # Waiting tasks that used no attempt first, then untouched ones, then the others.
        fresh = [i for i in self.requeued if self.tasks[i].attempts == 0]
        if fresh:
            index = fresh[0]
        else:
            while self.frontier < self.num_tasks and self.frontier in self.tasks:
                self.frontier += 1
            if self.frontier < self.num_tasks:
                index = self.frontier
                self.frontier += 1
            elif self.requeued:
                index = self.requeued[0]
            else:
                return None
        old = self.task(index)
        self._store(
            index,
            ModelTask(
                "computing", old.progress, worker, old.attempts + 1, self.lease_from(now), now
            ),
        )
        return index

    def refuses(self, index: int, by: str | None, *, heartbeat: bool = False) -> bool:
        """Whether a worker saying it is `by` may not change the task: another one holds it;
        or whether the task has no lease for a heartbeat to renew."""
        task = self.task(index)
        if heartbeat and task.state != "computing":
            return True
        return by is not None and task.worker is not None and task.worker != by

    def update(
        self,
        index: int,
        progress: int | None,
        state: str | None,
        now: dt.datetime,
        by: str | None = None,
        exit_code: int | None = None,
        error: str | None = None,
    ) -> None:
        """A change of the task. Leaving computing ends its attempt: handed back (waiting), it
        gives the attempt back; failed, it waits again while the run allows more attempts."""
        old = self.task(index)
        new_state = old.state if state is None else state
        new_progress = old.progress if progress is None else progress
        attempts = old.attempts
        ends = old.state == "computing" and state in _ENDED_AS
        if ends and state == "waiting":
            attempts = max(0, attempts - 1)
        if ends and state == "failed" and self.max_attempts is not None:
            new_state = "waiting" if attempts < self.max_attempts else "failed"
        worker, lease = None, None
        if new_state == "computing":
            worker = by if old.worker is None else old.worker
            lease = self.lease_from(now)
        elif new_state == "done":
            worker = by if old.worker is None else old.worker
        self._store(index, ModelTask(new_state, new_progress, worker, attempts, lease, old.started))
        told = exit_code is not None or error is not None
        if state in _ENDED_AS and (ends or told):
            self._record(
                index, (_ENDED_AS[state], old.worker or by, old.started, now, exit_code, error)
            )

    def _record(self, index: int, attempt: ModelAttempt) -> None:
        """A success is recorded only over the record of an earlier attempt."""
        if attempt[0] != "done" or index in self.attempts:
            self.attempts[index] = attempt

    def expire(self, now: dt.datetime) -> int:
        """Hands back the tasks whose lease ran out by `now`; how many there were."""
        expired = 0
        for index, task in list(self.tasks.items()):
            if task.state != "computing" or task.lease_expires is None or task.lease_expires > now:
                continue
            spent = self.max_attempts is not None and task.attempts >= self.max_attempts
            state = "failed" if spent else "waiting"
            self._store(
                index, ModelTask(state, task.progress, None, task.attempts, None, task.started)
            )
            self._record(index, ("lost", task.worker, task.started, task.lease_expires, None, None))
            expired += 1
        return expired

    def restart(self, *, everything: bool) -> None:
        for index, task in list(self.tasks.items()):
            if everything:
                self._store(index, ModelTask())
            elif task.progress < _FULL or task.state == "failed":
                self._store(index, ModelTask("waiting", task.progress, started=task.started))
        if everything:
            self.attempts.clear()

    def retry(self, indices: list[int] | None) -> int:
        """Puts the failed tasks, or the finished ones among `indices`, back from the start;
        how many."""
        chosen = sorted(self.tasks) if indices is None else sorted(set(indices))
        states = ("failed",) if indices is None else ("failed", "done")
        retried = 0
        for index in chosen:
            task = self.tasks.get(index)
            if task is not None and task.state in states:
                self._store(index, ModelTask("waiting", started=task.started))
                retried += 1
        return retried

    def in_state(self, state: str) -> list[int]:
        """The indices of the tasks in `state`, untouched ones included, in order."""
        return [i for i in range(self.num_tasks) if self.task(i).state == state]

    def counters(self) -> tuple[int, int, int, int, int]:
        """Computing, done, failed, waiting and the sum of progress, counted from the tasks."""
        states = [task.state for task in self.tasks.values()]
        computing, done = states.count("computing"), states.count("done")
        failed = states.count("failed")
        progress = sum(task.progress for task in self.tasks.values())
        return computing, done, failed, self.num_tasks - computing - done - failed, progress

    def held(self) -> collections.Counter[str]:
        """How many tasks each worker is computing."""
        return collections.Counter(
            task.worker
            for task in self.tasks.values()
            if task.state == "computing" and task.worker is not None
        )

    def _store(self, index: int, task: ModelTask) -> None:
        self.tasks[index] = task
        position = bisect.bisect_left(self.requeued, index)
        queued = position < len(self.requeued) and self.requeued[position] == index
        if task.state == "waiting" and not queued:
            self.requeued.insert(position, index)
        elif task.state != "waiting" and queued:
            del self.requeued[position]


def assert_task_matches(task: Task, index: int, expected: ModelTask) -> None:
    """The store's task is the model's."""
    assert (
        task.index,
        task.state.value,
        task.progress,
        task.worker,
        task.attempts,
        task.lease_expires,
        task.started,
    ) == (
        index,
        expected.state,
        expected.progress,
        expected.worker,
        expected.attempts,
        expected.lease_expires,
        expected.started,
    )


def assert_attempt_matches(attempt: Attempt | None, expected: ModelAttempt | None) -> None:
    found = None
    if attempt is not None:
        found = (
            attempt.outcome.value,
            attempt.worker,
            attempt.started,
            attempt.ended,
            attempt.exit_code,
            attempt.error,
        )
    assert found == expected


def every_page(storage: Storage, run_uuid: str, state: TaskState, limit: int) -> list[TaskReport]:
    """The run's tasks in `state`, page after page; each page at most `limit` and after the
    last, as the pages' cursors say."""
    reports: list[TaskReport] = []
    after = -1
    for _ in range(10_000):
        page = storage.runs.list_tasks(run_uuid, state, after, limit)
        assert len(page.reports) <= limit
        assert all(report.task.index > after for report in page.reports)
        reports += page.reports
        if page.next_after is None:
            return reports
        assert page.next_after > after
        after = page.next_after
    raise AssertionError("the pages never end")


def _state(change: TaskChange) -> str | None:
    return None if change.state is None else change.state.value


def store_machine(
    make_storage: Callable[[], Storage], *, max_run_size: int = strategies.MAX_SMALL_RUN
) -> type[RuleBasedStateMachine]:
    """A state machine class checking the stores `make_storage` returns against the model.

    `make_storage` is called once per example and must return an empty store; the machine
    closes it at the end of the example. Run the class with `run_state_machine_as_test`, or
    take its `TestCase` attribute.

    The machine keeps its own clock and hands its time to every operation, so leases run out
    exactly when the machine moves the clock past them.
    """

    run_sizes = st.one_of(st.integers(1, 3), strategies.run_sizes(max_run_size))
    clock_steps = st.builds(
        dt.timedelta,
        seconds=st.integers(0, strategies.MAX_SHORT_LEASE + 1),
        microseconds=st.sampled_from([0, 1, 250_000]),
    )

    class StoreMachine(RuleBasedStateMachine):
        runs = Bundle[str]("runs")
        workers = Bundle[str]("workers")

        def __init__(self) -> None:
            super().__init__()
            self.storage = make_storage()
            self.model: dict[str, ModelRun] = {}
            self.deleted: list[str] = []
            self.registered: dict[str, Worker] = {}
            self.now = _START
            self.runs_created = 0

        def teardown(self) -> None:
            leave_loops(self.storage)
            self.storage.close()

        def tick(self) -> dt.datetime:
            self.now += dt.timedelta(seconds=1)
            return self.now

        @initialize(target=runs, num_tasks=run_sizes, policy=strategies.short_run_policies())
        def create_first_run(self, num_tasks: int, policy: RunPolicy) -> str:
            return self._create_run(num_tasks, policy)

        @initialize(target=workers, registration=strategies.registrations())
        def register_first_worker(self, registration: WorkerRegistration) -> str:
            return self._register_worker(registration)

        @initialize(target=workers, registration=strategies.registrations())
        def register_second_worker(self, registration: WorkerRegistration) -> str:
            """Two workers from the start, so that tasks are often taken from one by another."""
            return self._register_worker(registration)

        @rule(target=runs, num_tasks=run_sizes, policy=strategies.short_run_policies())
        def create_run(self, num_tasks: int, policy: RunPolicy) -> str:
            return self._create_run(num_tasks, policy)

        def _create_run(self, num_tasks: int, policy: RunPolicy) -> str:
            self.runs_created += 1
            run_uuid = uuid.UUID(int=self.runs_created).hex
            run = self.storage.runs.create_run(run_uuid, num_tasks, policy)
            assert (run.uuid, run.num_tasks, run.policy, run.counters) == (
                run_uuid,
                num_tasks,
                policy,
                RunCounters(),
            )
            self.model[run_uuid] = ModelRun(num_tasks, policy.lease_seconds, policy.max_attempts)
            return run_uuid

        @rule(run_uuid=consumes(runs))
        def delete_run(self, run_uuid: str) -> None:
            self.storage.runs.delete_run(run_uuid)
            del self.model[run_uuid]
            self.deleted.append(run_uuid)

        @rule(step=clock_steps, sweep=st.booleans())
        def time_passes(self, step: dt.timedelta, sweep: bool) -> None:
            """Time passes, and the leases that ran out expire, or not yet."""
            self.now += step
            if sweep:
                self.expire_leases()

        @precondition(lambda self: self._lease_ends())
        @rule(
            data=st.data(),
            early=st.sampled_from([dt.timedelta(0), dt.timedelta(microseconds=1)]),
            sweep=st.booleans(),
        )
        def time_reaches_a_lease_end(
            self, data: st.DataObject, early: dt.timedelta, sweep: bool
        ) -> None:
            """The clock stops at the very end of a lease, or a microsecond before it."""
            end = data.draw(st.sampled_from(self._lease_ends()), label="lease end")
            self.now = max(self.now, end - early)
            if sweep:
                self.expire_leases()

        def _lease_ends(self) -> list[dt.datetime]:
            return sorted(
                task.lease_expires
                for model in self.model.values()
                for task in model.tasks.values()
                if task.state == "computing"
                and task.lease_expires is not None
                and task.lease_expires > self.now
            )

        @rule(target=workers, registration=strategies.registrations())
        def register_worker(self, registration: WorkerRegistration) -> str:
            return self._register_worker(registration)

        def _register_worker(self, registration: WorkerRegistration) -> str:
            if registration.uuid in self.registered:
                self._register_known(registration)
                return registration.uuid
            with pytest.raises(WorkerNotFound):
                self.storage.workers.get_worker(registration.uuid)
            with pytest.raises(WorkerNotFound):
                self.storage.workers.seen(registration.uuid, self.now)
            now = self.tick()
            worker = self.storage.workers.register(registration, now)
            assert (worker.registration, worker.started, worker.last_seen) == (
                registration,
                now,
                now,
            )
            assert self.storage.workers.get_worker(registration.uuid) == worker
            self.registered[registration.uuid] = worker
            return registration.uuid

        @rule(worker_uuid=workers, pid=st.none() | strategies.pids())
        def register_worker_again(self, worker_uuid: str, pid: int | None) -> None:
            """Again as itself (no `pid`), or as another process claiming the same uuid."""
            registration = self.registered[worker_uuid].registration
            self._register_known(
                registration if pid is None else attrs.evolve(registration, pid=pid)
            )

        def _register_known(self, registration: WorkerRegistration) -> None:
            known = self.registered[registration.uuid]
            if registration == known.registration:
                assert self.storage.workers.register(registration, self.tick()) == known
            else:
                with pytest.raises(Conflict):
                    self.storage.workers.register(registration, self.tick())
            assert self.storage.workers.get_worker(registration.uuid) == known

        @rule(worker_uuid=workers)
        def worker_is_heard_from(self, worker_uuid: str) -> None:
            worker = self.storage.workers.seen(worker_uuid, self.now)
            expected = attrs.evolve(self.registered[worker_uuid], last_seen=self.now)
            assert worker == expected
            self.registered[worker_uuid] = expected

        @rule(
            run_uuid=runs,
            worker_uuid=workers,
            count=st.integers(1, 4),
            times=st.integers(1, 3),
        )
        def claim(self, run_uuid: str, worker_uuid: str, count: int, times: int) -> None:
            model = self.model[run_uuid]
            for _ in range(times):
                tasks = claim_tasks(self.storage, run_uuid, worker_uuid, self.now, count)
                self._check_claimed(model, Wanted(worker_uuid, count), tasks)

        @rule(
            run_uuid=runs,
            wanted=st.lists(st.tuples(workers, st.integers(1, 3)), min_size=1, max_size=4),
        )
        def claim_together(self, run_uuid: str, wanted: list[tuple[str, int]]) -> None:
            claims = [Wanted(worker_uuid, count) for worker_uuid, count in wanted]
            each = claim_batch(self.storage, run_uuid, claims, self.now)
            assert len(each) == len(claims)
            for one, tasks in zip(claims, each, strict=True):
                self._check_claimed(self.model[run_uuid], one, tasks)

        def _check_claimed(self, model: ModelRun, wanted: Wanted, tasks: list[Task]) -> None:
            """The tasks are those the model hands out for the claim, in order."""
            expected: list[int] = []
            while len(expected) < wanted.count:
                index = model.claim(wanted.worker_uuid, self.now)
                if index is None:
                    break
                expected.append(index)
            assert [task.index for task in tasks] == expected
            for task in tasks:
                assert_task_matches(task, task.index, model.task(task.index))

        @rule(
            run_uuid=runs,
            data=st.data(),
            change=strategies.task_changes(),
            by=st.none() | workers,
        )
        def update(
            self, run_uuid: str, data: st.DataObject, change: TaskChange, by: str | None
        ) -> None:
            model = self.model[run_uuid]
            index = data.draw(st.integers(0, model.num_tasks - 1), label="index")
            self._update(run_uuid, index, change, by)

        @rule(run_uuid=runs, data=st.data(), by=st.none() | workers)
        def heartbeat(self, run_uuid: str, data: st.DataObject, by: str | None) -> None:
            """An empty change, from a worker or a person: it renews the lease, if any."""
            model = self.model[run_uuid]
            index = data.draw(self._held_or_any(model), label="index")
            self._update(run_uuid, index, TaskChange(), by)

        @rule(run_uuid=runs, data=st.data(), worker_uuid=workers, change=strategies.task_changes())
        def zombie_update(
            self, run_uuid: str, data: st.DataObject, worker_uuid: str, change: TaskChange
        ) -> None:
            """A worker changing a task another worker holds, as one whose lease ran out does."""
            model = self.model[run_uuid]
            taken = sorted(i for i in model.tasks if model.refuses(i, worker_uuid))
            if not taken:
                return
            index = data.draw(st.sampled_from(taken), label="index")
            self._update(run_uuid, index, change, worker_uuid)

        @rule(
            run_uuid=runs,
            data=st.data(),
            progress=st.none() | strategies.progresses(),
            as_holder=st.booleans(),
        )
        def requeue(
            self, run_uuid: str, data: st.DataObject, progress: int | None, as_holder: bool
        ) -> None:
            model = self.model[run_uuid]
            index = data.draw(self._held_or_any(model), label="index")
            by = model.task(index).worker if as_holder else None
            self._update(run_uuid, index, TaskChange(progress, TaskState.WAITING), by)

        @rule(run_uuid=runs, data=st.data(), as_holder=st.booleans())
        def finish(self, run_uuid: str, data: st.DataObject, as_holder: bool) -> None:
            """What a worker does last: its task is done, at 100 percent."""
            model = self.model[run_uuid]
            index = data.draw(self._held_or_any(model), label="index")
            by = model.task(index).worker if as_holder else None
            self._update(run_uuid, index, _FINISHED, by)

        def _update(self, run_uuid: str, index: int, change: TaskChange, by: str | None) -> None:
            model = self.model[run_uuid]
            if model.refuses(index, by, heartbeat=change.renews_only):
                before = self.storage.runs.get_run(run_uuid)
                with pytest.raises(Conflict):
                    self.storage.runs.update_task(run_uuid, index, change, self.now, by)
                assert self.storage.runs.get_run(run_uuid) == before
                assert_task_matches(
                    self.storage.runs.get_task(run_uuid, index), index, model.task(index)
                )
                return
            task = self.storage.runs.update_task(run_uuid, index, change, self.now, by)
            model.update(
                index,
                change.progress,
                _state(change),
                self.now,
                by,
                change.exit_code,
                change.error,
            )
            assert_task_matches(task, index, model.task(index))

        @rule(
            run_uuid=runs,
            data=st.data(),
            change=st.just(_FINISHED) | strategies.task_changes(),
            by=st.none() | workers,
            as_holder=st.booleans(),
        )
        def change_many(
            self,
            run_uuid: str,
            data: st.DataObject,
            change: TaskChange,
            by: str | None,
            as_holder: bool,
        ) -> None:
            """One change of many tasks at once, as a worker reporting its finished tasks
            makes it: some held by others, some untouched, one past the run now and then."""
            model = self.model[run_uuid]
            holders = sorted({task.worker for task in model.tasks.values() if task.worker})
            if as_holder and holders:
                by = data.draw(st.sampled_from(holders), label="holder")
            indices = data.draw(
                st.lists(st.integers(0, model.num_tasks), max_size=5, unique=True),
                label="indices",
            )
            if model.num_tasks in indices:
                before = self.storage.runs.get_run(run_uuid)
                with pytest.raises(TaskNotFound):
                    self.storage.runs.change_tasks(run_uuid, indices, change, self.now, by)
                assert self.storage.runs.get_run(run_uuid) == before
                return
            expected = [i for i in indices if model.refuses(i, by, heartbeat=change.renews_only)]
            refused = self.storage.runs.change_tasks(run_uuid, indices, change, self.now, by)
            assert refused == expected
            for index in indices:
                if index not in refused:
                    model.update(
                        index,
                        change.progress,
                        _state(change),
                        self.now,
                        by,
                        change.exit_code,
                        change.error,
                    )

        @rule()
        def expire_leases(self) -> None:
            expired = self.storage.runs.expire_leases(self.now)
            assert expired == sum(model.expire(self.now) for model in self.model.values())

        @rule(run_uuid=runs, everything=st.booleans())
        def restart(self, run_uuid: str, everything: bool) -> None:
            self.storage.runs.restart(run_uuid, everything=everything)
            self.model[run_uuid].restart(everything=everything)

        @rule(run_uuid=runs)
        def retry_failed(self, run_uuid: str) -> None:
            retried = self.storage.runs.retry(run_uuid, None)
            assert retried == self.model[run_uuid].retry(None)

        @rule(run_uuid=runs, data=st.data())
        def retry_some(self, run_uuid: str, data: st.DataObject) -> None:
            """A retry of chosen tasks: finished or not, some twice, some outside the run."""
            model = self.model[run_uuid]
            indices = data.draw(
                st.lists(st.integers(0, model.num_tasks + 1), min_size=1, max_size=6),
                label="indices",
            )
            retried = self.storage.runs.retry(run_uuid, indices)
            inside = [i for i in indices if i < model.num_tasks]
            assert retried == model.retry(inside)

        @rule(run_uuid=runs, past_the_end=st.booleans(), distance=st.integers(0, 3))
        def task_outside_the_run(self, run_uuid: str, past_the_end: bool, distance: int) -> None:
            num_tasks = self.model[run_uuid].num_tasks
            index = num_tasks + distance if past_the_end else -1 - distance
            with pytest.raises(TaskNotFound):
                self.storage.runs.get_task(run_uuid, index)
            with pytest.raises(TaskNotFound):
                self.storage.runs.update_task(run_uuid, index, TaskChange(progress=1), self.now)

        @precondition(lambda self: self.deleted)
        @rule(data=st.data(), worker_uuid=workers)
        def deleted_run_is_gone(self, data: st.DataObject, worker_uuid: str) -> None:
            run_uuid = data.draw(st.sampled_from(self.deleted), label="deleted run")
            runs = self.storage.runs
            now = self.now
            for operation in (
                lambda: runs.get_run(run_uuid),
                lambda: runs.get_task(run_uuid, 0),
                lambda: runs.update_task(run_uuid, 0, TaskChange(progress=1), now),
                lambda: runs.update_task(run_uuid, 0, TaskChange(), now, worker_uuid),
                lambda: claim_tasks(self.storage, run_uuid, worker_uuid, now, 1),
                lambda: runs.restart(run_uuid, everything=True),
                lambda: runs.retry(run_uuid, None),
                lambda: runs.retry(run_uuid, [0]),
                lambda: runs.list_tasks(run_uuid, TaskState.FAILED, -1, 10),
                lambda: runs.list_tasks(run_uuid, TaskState.WAITING, -1, 10),
                lambda: runs.delete_run(run_uuid),
            ):
                with pytest.raises(RunNotFound):
                    operation()

        @staticmethod
        def _held_or_any(model: ModelRun) -> st.SearchStrategy[int]:
            """A task some worker is computing, as most updates are; any task if none is."""
            held = sorted(i for i, task in model.tasks.items() if task.state == "computing")
            return st.sampled_from(held) if held else st.integers(0, model.num_tasks - 1)

        @invariant()
        def store_agrees_with_model(self) -> None:
            listed = self.storage.runs.list_runs()
            assert [run.uuid for run in listed] == list(self.model)
            for listed_run, (run_uuid, model) in zip(listed, self.model.items(), strict=True):
                run = self.storage.runs.get_run(run_uuid)
                assert listed_run.counters == run.counters
                assert (run.num_tasks, run.policy) == (
                    model.num_tasks,
                    RunPolicy(model.lease_seconds, model.max_attempts),
                )
                tasks = [self.storage.runs.get_task(run_uuid, i) for i in range(model.num_tasks)]
                for index, task in enumerate(tasks):
                    assert_task_matches(task, index, model.task(index))
                counted = (
                    run.num_computing,
                    run.num_done,
                    run.num_failed,
                    run.num_waiting,
                    run.counters.progress,
                )
                assert counted == model.counters()
                assert run.counters == RunCounters.of(tasks)
                assert dict(self.storage.runs.holders(run_uuid)) == dict(model.held())
                requeued = self.storage.runs.requeued_tasks(run_uuid, model.num_tasks)
                assert [task.index for task in requeued] == model.requeued
                assert requeued == [tasks[index] for index in model.requeued]
                self._check_pages(run_uuid, model, tasks)

        def _check_pages(self, run_uuid: str, model: ModelRun, tasks: list[Task]) -> None:
            """Paged through, the tasks of each state are the model's, with its records."""
            for state in TaskState:
                limit = 1 + (self.runs_created + len(state.value)) % 3
                reports = every_page(self.storage, run_uuid, state, limit)
                expected = model.in_state(state.value)
                assert [report.task.index for report in reports] == expected
                for report in reports:
                    assert report.task == tasks[report.task.index]
                    assert_attempt_matches(
                        report.last_attempt, model.attempts.get(report.task.index)
                    )

        @invariant()
        def workers_agree_with_model(self) -> None:
            assert list(self.storage.workers.list_workers()) == list(self.registered.values())
            held = sum((model.held() for model in self.model.values()), collections.Counter())
            assert dict(self.storage.runs.tasks_held()) == dict(held)

    return StoreMachine
