"""Prometheus metrics: what the server's processes did, and where the runs stand.

`taskfarm serve --workers N` runs N processes, each counting what it serves. When
PROMETHEUS_MULTIPROC_DIR names a directory (`serve` sees to it, see `metrics_directory`),
prometheus_client keeps every process's values in files there and a scrape of any process sums
the files of all; without it (one process, tests) values live in the process. prometheus_client
reads the variable once, when it is first imported: the variable must be set before the server
processes start, as the processes are spawned fresh and import it themselves.

The metric objects are made by each application, with a registry of its own, not as module
globals: in multiprocess mode values are files named by process and metric whatever the
registry, and in one process two applications (tests) count apart.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    values,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from taskfarm.config import SettingsError
from taskfarm.domain import StorageError, TaskChange, TaskState
from taskfarm.entrypoints.http.observe import Answered
from taskfarm.service import FarmService

logger = logging.getLogger(__name__)

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
#: The text exposition format every Prometheus server reads.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4
#: The route label of requests no route took: their paths, being anything, would each make
#: series of their own.
UNMATCHED = "unmatched"
#: Any other method is counted as `other`, for the same reason.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})
#: The change label of an update that reports progress without setting a status.
PROGRESS = "progress"
#: Seconds: finer than prometheus_client's default below 5 ms, where most answers fall.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
#: The files prometheus_client writes in PROMETHEUS_MULTIPROC_DIR, one per kind and process.
_VALUE_FILES = ("counter_*.db", "gauge_*.db", "histogram_*.db", "summary_*.db")


class _ProcessId:
    """This process's id, asked of the kernel once and again after a fork.

    prometheus_client asks for it on every change of a value in multiprocess mode, to notice
    a fork: a system call on the path of every request. Its documentation lets the process
    identifier be replaced, before any metric is made.
    """

    def __init__(self) -> None:
        self.value = os.getpid()
        os.register_at_fork(after_in_child=self._forked)

    def _forked(self) -> None:
        self.value = os.getpid()

    def __call__(self) -> int:
        return self.value


if os.environ.get(MULTIPROCESS_DIR):
    values.ValueClass = values.MultiProcessValue(_ProcessId())  # type: ignore[no-untyped-call]


class Metrics:
    """The metrics of one server process, and `registry`, what a scrape of it reads: the
    values of every server process in multiprocess mode, and the runs' gauges once."""

    def __init__(self, taskfarm: FarmService) -> None:
        own = CollectorRegistry()
        self._request_seconds = Histogram(
            "taskfarm_http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route template and status.",
            ["method", "route", "status"],
            buckets=DURATION_BUCKETS,
            registry=own,
        )
        self._tasks_claimed = Counter(
            "taskfarm_tasks_claimed", "Tasks handed out to workers.", registry=own
        )
        self._empty_claims = Counter(
            "taskfarm_empty_claims",
            "Claim requests that found no task left to hand out.",
            registry=own,
        )
        task_updates = Counter(
            "taskfarm_task_updates",
            "Task updates made, by the status they set, or progress for those that set none.",
            ["change"],
            registry=own,
        )
        self._leases_expired = Counter(
            "taskfarm_leases_expired",
            "Leases that ran out, each an attempt lost: their tasks went back to waiting, or "
            "failed on their last attempt.",
            registry=own,
        )
        self._attempts_failed = Counter(
            "taskfarm_attempts_failed",
            "Attempts whose worker reported them failed: their tasks went back to waiting "
            "while attempts were left, else failed.",
            registry=own,
        )
        # Made up front, so that every change shows from the start, at 0.
        self._task_updates = {
            change: task_updates.labels(change)
            for change in (PROGRESS, *(state.value for state in TaskState))
        }
        # Finding a labelled series costs more than observing it: requests keep theirs here.
        self._requests: dict[tuple[str, str | None, int], Histogram] = {}
        directory = os.environ.get(MULTIPROCESS_DIR)
        if directory:
            self.registry = CollectorRegistry()
            # prometheus_client leaves this one untyped.
            MultiProcessCollector(self.registry, path=directory)  # type: ignore[no-untyped-call]
        else:
            self.registry = own
        self.registry.register(RunGauges(taskfarm))

    def observe_request(self, answered: Answered) -> None:
        method = answered.method if answered.method in METHODS else "other"
        key = (method, answered.route, answered.status)
        series = self._requests.get(key)
        if series is None:
            route = UNMATCHED if answered.route is None else answered.route
            series = self._request_seconds.labels(method, route, str(answered.status))
            self._requests[key] = series
        series.observe(answered.seconds)

    def count_claim(self, tasks: int) -> None:
        """Counts a claim request that handed out `tasks` tasks, or found none."""
        if tasks:
            self._tasks_claimed.inc(tasks)
        else:
            self._empty_claims.inc()

    def count_update(self, change: TaskChange) -> None:
        self._task_updates[PROGRESS if change.state is None else change.state.value].inc()
        if change.state is TaskState.FAILED:
            self._attempts_failed.inc()

    def count_expired_leases(self, count: int) -> None:
        self._leases_expired.inc(count)

    def exposition(self) -> bytes:
        """The scrape's answer, in the text format of `CONTENT_TYPE`."""
        return generate_latest(self.registry)


class RunGauges:
    """The tasks of every run by state, read from the store at each scrape: a run's counters
    are kept on every change, so that costs one small read per run.

    A scrape registry's collector, so that in multiprocess mode the process answering the
    scrape reports the runs once. A store that does not answer leaves the runs out and says so
    in `taskfarm_database_up`; the outage is logged once, not at every scrape.
    """

    def __init__(self, taskfarm: FarmService) -> None:
        self._taskfarm = taskfarm
        self._database_down = False

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "taskfarm_database_up",
            "Whether the database answered this scrape; without it, the run gauges are left out.",
        )
        try:
            runs = self._taskfarm.list_runs()
        except StorageError as error:
            if not self._database_down:
                logger.warning("metrics leave the runs out: %s", error)
            self._database_down = True
            up.add_metric([], 0)
            yield up
            return
        if self._database_down:
            logger.info("metrics report the runs again: the database answers")
        self._database_down = False
        up.add_metric([], 1)
        tasks = GaugeMetricFamily(
            "taskfarm_run_tasks", "Tasks of each run, by state.", labels=["run", "state"]
        )
        percent = GaugeMetricFamily(
            "taskfarm_run_percent_done",
            "The mean progress of each run's tasks, in percent.",
            labels=["run"],
        )
        for run in runs:
            tasks.add_metric([run.uuid, TaskState.WAITING.value], run.num_waiting)
            tasks.add_metric([run.uuid, TaskState.COMPUTING.value], run.num_computing)
            tasks.add_metric([run.uuid, TaskState.DONE.value], run.num_done)
            tasks.add_metric([run.uuid, TaskState.FAILED.value], run.num_failed)
            percent.add_metric([run.uuid], run.percent_done)
        yield from (up, tasks, percent)


@contextmanager
def metrics_directory(
    workers: int, environ: MutableMapping[str, str] | None = None
) -> Iterator[str | None]:
    """Sees that PROMETHEUS_MULTIPROC_DIR names an empty directory while server processes
    start and run, so that a scrape of any of them sums them all; yields the directory.

    A directory the variable already names is made if missing and emptied of the files of an
    earlier server, whose values would otherwise be added in. Without the variable, several
    processes share a temporary directory, removed afterwards; one process needs none.
    """
    env = os.environ if environ is None else environ
    given = env.get(MULTIPROCESS_DIR)
    if given:
        try:
            directory = Path(given)
            directory.mkdir(parents=True, exist_ok=True)
            for pattern in _VALUE_FILES:
                for stale in directory.glob(pattern):
                    stale.unlink()
        except OSError as error:
            raise SettingsError(f"{MULTIPROCESS_DIR} {given!r} is unusable: {error}") from error
        yield given
    elif workers == 1:
        yield None
    else:
        with tempfile.TemporaryDirectory(prefix="taskfarm-metrics-") as made:
            env[MULTIPROCESS_DIR] = made
            try:
                yield made
            finally:
                del env[MULTIPROCESS_DIR]
