"""A state machine that drives a store and an independent model of the rules side by side.

The model is a plain statement of the rules, written without the domain's `Task` methods or
`next_claim`, so that the memory store, and every other store after it, is checked against
something other than itself.
"""

from __future__ import annotations

import bisect
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
    Conflict,
    RunCounters,
    RunNotFound,
    Task,
    TaskChange,
    TaskNotFound,
    TaskState,
    Worker,
    WorkerNotFound,
    WorkerRegistration,
)
from taskfarm.ports import Storage
from tests import strategies

#: 100 percent, in the millionths of a percent that progress is counted in.
_FULL = 100_000_000
_START = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)


@attrs.frozen
class ModelTask:
    """A task of the model; one nobody touched is waiting at zero, for nobody."""

    state: str = "waiting"
    progress: int = 0
    worker: str | None = None


@attrs.define
class ModelRun:
    """One run: the tasks someone touched, the frontier and the requeued indices, in order."""

    num_tasks: int
    tasks: dict[int, ModelTask] = attrs.Factory(dict)
    frontier: int = 0
    requeued: list[int] = attrs.Factory(list)

    def task(self, index: int) -> ModelTask:
        return self.tasks.get(index, ModelTask())

    def claim(self, worker: str) -> int | None:
        if self.requeued:
            index = self.requeued.pop(0)
        else:
            while self.frontier < self.num_tasks and self.frontier in self.tasks:
                self.frontier += 1
            if self.frontier == self.num_tasks:
                return None
            index = self.frontier
            self.frontier += 1
        self._store(index, ModelTask("computing", self.task(index).progress, worker))
        return index

    def update(self, index: int, progress: int | None, state: str | None) -> None:
        old = self.task(index)
        new_state = old.state if state is None else state
        new_progress = old.progress if progress is None else progress
        worker = None if new_state == "waiting" else old.worker
        self._store(index, ModelTask(new_state, new_progress, worker))

    def restart(self, *, everything: bool) -> None:
        for index, task in list(self.tasks.items()):
            if everything:
                self._store(index, ModelTask())
            elif task.progress < _FULL:
                self._store(index, ModelTask("waiting", task.progress, None))

    def counters(self) -> tuple[int, int, int, int]:
        """Computing, done, waiting and the sum of progress, counted from the tasks."""
        states = [task.state for task in self.tasks.values()]
        computing, done = states.count("computing"), states.count("done")
        progress = sum(task.progress for task in self.tasks.values())
        return computing, done, self.num_tasks - computing - done, progress

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
    assert (task.index, task.state.value, task.progress, task.worker) == (
        index,
        expected.state,
        expected.progress,
        expected.worker,
    )


def store_machine(
    make_storage: Callable[[], Storage], *, max_run_size: int = strategies.MAX_SMALL_RUN
) -> type[RuleBasedStateMachine]:
    """A state machine class checking the stores `make_storage` returns against the model.

    `make_storage` is called once per example and must return an empty store; the machine
    closes it at the end of the example. Run the class with `run_state_machine_as_test`, or
    take its `TestCase` attribute.
    """

    run_sizes = st.one_of(st.integers(1, 3), strategies.run_sizes(max_run_size))

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
            self.storage.close()

        def tick(self) -> dt.datetime:
            self.now += dt.timedelta(seconds=1)
            return self.now

        @initialize(target=runs, num_tasks=run_sizes)
        def create_first_run(self, num_tasks: int) -> str:
            return self._create_run(num_tasks)

        @initialize(target=workers, registration=strategies.registrations())
        def register_first_worker(self, registration: WorkerRegistration) -> str:
            return self._register_worker(registration)

        @rule(target=runs, num_tasks=run_sizes)
        def create_run(self, num_tasks: int) -> str:
            return self._create_run(num_tasks)

        def _create_run(self, num_tasks: int) -> str:
            self.runs_created += 1
            run_uuid = uuid.UUID(int=self.runs_created).hex
            run = self.storage.runs.create_run(run_uuid, num_tasks)
            assert (run.uuid, run.num_tasks, run.counters) == (run_uuid, num_tasks, RunCounters())
            self.model[run_uuid] = ModelRun(num_tasks)
            return run_uuid

        @rule(run_uuid=consumes(runs))
        def delete_run(self, run_uuid: str) -> None:
            self.storage.runs.delete_run(run_uuid)
            del self.model[run_uuid]
            self.deleted.append(run_uuid)

        @rule(target=workers, registration=strategies.registrations())
        def register_worker(self, registration: WorkerRegistration) -> str:
            return self._register_worker(registration)

        def _register_worker(self, registration: WorkerRegistration) -> str:
            if registration.uuid in self.registered:
                self._register_known(registration)
                return registration.uuid
            with pytest.raises(WorkerNotFound):
                self.storage.workers.get_worker(registration.uuid)
            now = self.tick()
            worker = self.storage.workers.register(registration, now)
            assert (worker.registration, worker.started) == (registration, now)
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
            first = self.registered[registration.uuid]
            if registration == first.registration:
                assert self.storage.workers.register(registration, self.tick()) == first
            else:
                with pytest.raises(Conflict):
                    self.storage.workers.register(registration, self.tick())
            assert self.storage.workers.get_worker(registration.uuid) == first

        @rule(run_uuid=runs, worker_uuid=workers, times=st.integers(1, 2 * max_run_size))
        def claim(self, run_uuid: str, worker_uuid: str, times: int) -> None:
            model = self.model[run_uuid]
            for _ in range(times):
                task = self.storage.runs.claim(run_uuid, worker_uuid)
                index = model.claim(worker_uuid)
                if index is None:
                    assert task is None
                    return
                assert task is not None
                assert_task_matches(task, index, model.task(index))

        @rule(run_uuid=runs, data=st.data(), change=strategies.task_changes())
        def update(self, run_uuid: str, data: st.DataObject, change: TaskChange) -> None:
            model = self.model[run_uuid]
            index = data.draw(st.integers(0, model.num_tasks - 1), label="index")
            task = self.storage.runs.update_task(run_uuid, index, change)
            state = None if change.state is None else change.state.value
            model.update(index, change.progress, state)
            assert_task_matches(task, index, model.task(index))

        @rule(run_uuid=runs, data=st.data(), progress=st.none() | strategies.progresses())
        def requeue(self, run_uuid: str, data: st.DataObject, progress: int | None) -> None:
            model = self.model[run_uuid]
            index = data.draw(self._held_or_any(model), label="index")
            change = TaskChange(progress=progress, state=TaskState.WAITING)
            task = self.storage.runs.update_task(run_uuid, index, change)
            model.update(index, progress, "waiting")
            assert_task_matches(task, index, model.task(index))

        @rule(run_uuid=runs, data=st.data())
        def finish(self, run_uuid: str, data: st.DataObject) -> None:
            """What a worker does last: its task is done, at 100 percent."""
            model = self.model[run_uuid]
            index = data.draw(self._held_or_any(model), label="index")
            change = TaskChange(progress=_FULL, state=TaskState.DONE)
            task = self.storage.runs.update_task(run_uuid, index, change)
            model.update(index, _FULL, "done")
            assert_task_matches(task, index, model.task(index))

        @rule(run_uuid=runs, everything=st.booleans())
        def restart(self, run_uuid: str, everything: bool) -> None:
            self.storage.runs.restart(run_uuid, everything=everything)
            self.model[run_uuid].restart(everything=everything)

        @rule(run_uuid=runs, data=st.data())
        def get_task(self, run_uuid: str, data: st.DataObject) -> None:
            model = self.model[run_uuid]
            index = data.draw(st.integers(0, model.num_tasks - 1), label="index")
            assert_task_matches(
                self.storage.runs.get_task(run_uuid, index), index, model.task(index)
            )

        @rule(run_uuid=runs, past_the_end=st.booleans(), distance=st.integers(0, 3))
        def task_outside_the_run(self, run_uuid: str, past_the_end: bool, distance: int) -> None:
            num_tasks = self.model[run_uuid].num_tasks
            index = num_tasks + distance if past_the_end else -1 - distance
            with pytest.raises(TaskNotFound):
                self.storage.runs.get_task(run_uuid, index)
            with pytest.raises(TaskNotFound):
                self.storage.runs.update_task(run_uuid, index, TaskChange(progress=1))

        @precondition(lambda self: self.deleted)
        @rule(data=st.data(), worker_uuid=workers)
        def deleted_run_is_gone(self, data: st.DataObject, worker_uuid: str) -> None:
            run_uuid = data.draw(st.sampled_from(self.deleted), label="deleted run")
            runs = self.storage.runs
            for operation in (
                lambda: runs.get_run(run_uuid),
                lambda: runs.get_task(run_uuid, 0),
                lambda: runs.update_task(run_uuid, 0, TaskChange(progress=1)),
                lambda: runs.claim(run_uuid, worker_uuid),
                lambda: runs.restart(run_uuid, everything=True),
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
                assert run.num_tasks == model.num_tasks
                tasks = [self.storage.runs.get_task(run_uuid, i) for i in range(model.num_tasks)]
                for index, task in enumerate(tasks):
                    assert_task_matches(task, index, model.task(index))
                counted = (run.num_computing, run.num_done, run.num_waiting, run.counters.progress)
                assert counted == model.counters()
                assert run.counters == RunCounters.of(tasks)

    return StoreMachine
