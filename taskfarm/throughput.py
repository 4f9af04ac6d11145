"""How fast runs finish tasks, and when they should be done, from what this process has seen.

Runs keep no timestamps: a run's pace is measured from successive looks at its done counter,
each taken when someone looks at the run. Every server process keeps its own few samples per
run, for the last minutes only and for a bounded number of runs. Each sample is a true reading
of the shared counter at a known time, so behind a load balancer every process still gives a
fair estimate, from the looks that happened to reach it.
"""

from __future__ import annotations

import collections
import datetime as dt
import threading
from collections.abc import Sequence

import attrs
from cachetools import TTLCache

from taskfarm.domain import Run
from taskfarm.ports import Clock

#: How far back the pace is measured: long enough to smooth tasks finishing in bursts, short
#: enough to follow a run whose workers come and go.
WINDOW = dt.timedelta(minutes=10)
#: Two looks closer together than this tell too little: until the samples span this long,
#: the pace is still being measured.
MIN_SPAN = dt.timedelta(seconds=5)
#: Samples kept per run over the window: one every WINDOW / MAX_SAMPLES, however many people
#: look, plus the latest look.
MAX_SAMPLES = 60
#: Runs measured at once; the ones looked at least recently are forgotten first.
MAX_RUNS = 10_000


@attrs.frozen
class Sample:
    """A run's done counter, read at `at`."""

    at: dt.datetime
    done: int


@attrs.frozen
class Estimate:
    """A run's pace over the last `span`, and how long until it is done at that pace.

    `tasks_per_second` is None while the pace is still being measured. `seconds_left` is 0
    for a run with no task left to finish, and None while measuring or when nothing was
    finished over the span (no pace, no end in sight).
    """

    tasks_per_second: float | None
    seconds_left: float | None
    span: dt.timedelta

    @property
    def measuring(self) -> bool:
        return self.tasks_per_second is None


def estimate(samples: Sequence[Sample], remaining: int) -> Estimate:
    """The pace between the first and the last sample, and how long `remaining` tasks take at
    that pace."""
    span = samples[-1].at - samples[0].at if samples else dt.timedelta(0)
    pace = None
    if span >= MIN_SPAN:
        pace = (samples[-1].done - samples[0].done) / span.total_seconds()
    if remaining <= 0:
        seconds_left: float | None = 0.0
    elif pace is None or pace <= 0:
        seconds_left = None
    else:
        seconds_left = remaining / pace
    return Estimate(pace, seconds_left, span)


def remaining_tasks(run: Run) -> int:
    """Tasks the run has yet to finish: failed tasks are not, until the run is restarted."""
    return run.num_tasks - run.num_done - run.num_failed


class ThroughputMeter:
    """Samples each run's done counter when it is looked at, and estimates its pace.

    Thread-safe: endpoints run in a thread pool.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        window: dt.timedelta = WINDOW,
        max_samples: int = MAX_SAMPLES,
        max_runs: int = MAX_RUNS,
    ) -> None:
        self._clock = clock
        self._window = window
        self._spacing = window / max_samples
        self._max_samples = max_samples
        # A run nobody looked at for a whole window has no sample left worth keeping.
        self._samples: TTLCache[str, collections.deque[Sample]] = TTLCache(
            max_runs, ttl=window.total_seconds(), timer=self._seconds
        )
        self._lock = threading.Lock()

    def _seconds(self) -> float:
        return self._clock.now().timestamp()

    def observe(self, run: Run) -> Estimate:
        """Records the run's done counter as of now, and estimates its pace from it and the
        samples before it."""
        now = self._clock.now()
        with self._lock:
            samples = self._samples.get(run.uuid)
            if samples is None:
                samples = collections.deque(maxlen=self._max_samples + 2)
            self._add(samples, Sample(now, run.num_done))
            self._samples[run.uuid] = samples
            taken = list(samples)
        return estimate(taken, remaining_tasks(run))

    def _add(self, samples: collections.deque[Sample], sample: Sample) -> None:
        if samples and (samples[-1].done > sample.done or samples[-1].at > sample.at):
            # The run was restarted (or the clock went back): what came before says nothing of
            # its pace now.
            samples.clear()
        while samples and samples[0].at < sample.at - self._window:
            samples.popleft()
        # Samples but the latest are kept a spacing apart: looks in quick succession replace
        # the latest rather than crowd out the old ones, so the samples span the whole window
        # however often the run is looked at.
        if len(samples) >= 2 and samples[-1].at - samples[-2].at < self._spacing:
            samples[-1] = sample
        else:
            samples.append(sample)
