"""Running a command once for each task of a run, several at a time: `taskfarm work`."""

from __future__ import annotations

import collections
import logging
import os
import queue
import signal
import subprocess
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO
from uuid import uuid1

import attrs
import requests

from taskfarm.client.api import MAX_CLAIM_COUNT, Api, Claim
from taskfarm.client.commands import CommandTemplate
from taskfarm.client.errors import TaskLost, UnexpectedStatus
from taskfarm.client.heartbeat import heartbeat_for, interval_for
from taskfarm.client.jobs import Job, OutputLines
from taskfarm.client.limits import NO_LIMITS, Limits, Outcome
from taskfarm.client.pace import REPORT_WITHIN_SECONDS, Pace
from taskfarm.client.progress import ProgressReporter

logger = logging.getLogger(__name__)


@attrs.frozen
class _Exited:
    task: int
    returncode: int


@attrs.frozen
class _Lost:
    task: int


@attrs.frozen
class _Interrupted:
    signum: int


@attrs.frozen
class _Finish:
    pass


@attrs.frozen
class _Exchanged:
    """The answer to reporting `reported` done and claiming `count`."""

    reported: list[int]
    count: int
    claims: list[Claim]
    lost: list[int]


#: Claims in a row whose answers may be lost before a worker gives up: past the session's
#: own retries, each is a server that died as it answered or a proxy that dropped the answer.
MAX_LOST_ANSWERS = 3
#: The answer to a request may have been lost, after the server acted on it.
_LOST_ANSWER_STATUSES = (502, 504)


def _answer_lost(error: Exception) -> bool:
    if isinstance(error, UnexpectedStatus):
        return error.status in _LOST_ANSWER_STATUSES
    return isinstance(error, requests.ConnectionError | requests.Timeout)


@attrs.frozen
class _ExchangeFailed:
    error: Exception
    reported: list[int]


_Event = _Exited | _Lost | _Interrupted | _Finish | _Exchanged | _ExchangeFailed


@attrs.frozen
class _Stop:
    reason: str
    exit_code: int
    #: Running commands are stopped too, not just claiming.
    hard: bool


class CommandRunner:
    """Claims tasks of a run and runs `command` for each, `jobs` at a time, until the run has
    no task left or a limit is reached.

    A command that exits with 0 marks its task done at 100%; any other exit reports the
    attempt failed, with the exit status and the tail of the command's error output: the
    server hands the task out again while the run allows more attempts. Lines a command
    prints as `TASKFARM_PROGRESS <percent>` report its progress; its other output goes to
    `output`, its error output to `errors` (each line after the task's index and a tab when
    `tagged`), and each also to `results/<task>.out` and `.err` when `results` is given.
    Every `heartbeat` seconds (None: never) the leases of running tasks are renewed.

    `interrupt(signum)` stops the running commands and hands their tasks back; `finish()`
    stops claiming and lets them finish. Both are safe to call from a signal handler.
    """

    def __init__(
        self,
        api: Api,
        run_uuid: str,
        command: CommandTemplate,
        *,
        output: BinaryIO,
        errors: BinaryIO,
        jobs: int = 1,
        limits: Limits = NO_LIMITS,
        heartbeat: float | None = None,
        max_attempts: int | None = None,
        results: Path | None = None,
        tagged: bool = False,
        environ: Mapping[str, str] = os.environ,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._api = api
        self._run_uuid = run_uuid
        self._command = command
        self._output = OutputLines(output)
        self._error_output = OutputLines(errors)
        self._results = results
        self._tagged = tagged
        self._slots = jobs
        self._limits = limits
        self._max_attempts = max_attempts
        # A copy, read once: os.environ decodes each variable again on every read.
        self._environ = dict(environ)
        self._program = command.program(self._environ)
        self._clock = clock
        self._worker_uuid = uuid1().hex
        self._events: queue.SimpleQueue[_Event] = queue.SimpleQueue()
        self._reporter = ProgressReporter(
            api.copy(), run_uuid, self._worker_uuid, self._report_lost
        )
        self._heartbeat = heartbeat_for(
            api, run_uuid, self._worker_uuid, heartbeat, self._report_lost
        )
        self._jobs: dict[int, Job] = {}
        #: Tasks claimed ahead, to start as soon as a command exits.
        self._ready: collections.deque[Claim] = collections.deque()
        #: Tasks whose command succeeded, to report done with the next claim.
        self._succeeded: list[int] = []
        #: When (`clock()`) the oldest of them is to be reported, claiming or not.
        self._report_due: float | None = None
        self._pace = Pace(jobs)
        #: Two threads per slot read the commands' output, reused from one to the next.
        self._readers = ThreadPoolExecutor(2 * jobs, thread_name_prefix="taskfarm-output")
        #: Claims and reports go from a thread of their own, one at a time, while commands
        #: start and run.
        self._exchanger = ThreadPoolExecutor(1, thread_name_prefix="taskfarm-exchange")
        self._exchange_api = api.copy()
        self._exchanging = False
        #: Claims in a row whose answers were lost.
        self._lost_answers = 0
        self._stop: _Stop | None = None
        self._drained = False
        self._claimed = self._done = self._failed = self._handed_back = self._lost = 0
        self._errors = 0
        #: The tasks whose commands failed since one last succeeded: a task that fails again
        #: and again is one bad task, not a broken worker.
        self._failing: set[int] = set()
        self._started = clock()

    @classmethod
    def for_run(
        cls,
        api: Api,
        run_uuid: str,
        command: CommandTemplate,
        *,
        output: BinaryIO,
        errors: BinaryIO,
        jobs: int = 1,
        limits: Limits = NO_LIMITS,
        heartbeat: float | None = None,
        results: Path | None = None,
        tagged: bool = False,
    ) -> CommandRunner:
        """A runner following the run's own rules: heartbeats every third of its lease unless
        `heartbeat` says otherwise, and its limit on attempts."""
        info = api.run_info(run_uuid)
        return cls(
            api,
            run_uuid,
            command,
            output=output,
            errors=errors,
            jobs=jobs,
            limits=limits,
            heartbeat=heartbeat or interval_for(info.get("leaseSeconds")),
            max_attempts=info.get("maxAttempts"),
            results=results,
            tagged=tagged,
        )

    def interrupt(self, signum: int) -> None:
        self._events.put(_Interrupted(signum))

    def finish(self) -> None:
        self._events.put(_Finish())

    def run(self) -> Outcome:
        try:
            self._api.register_worker(self._worker_uuid)
            self._reporter.start()
            self._heartbeat.start()
            self._started = self._clock()
            while True:
                self._check_the_clock()
                # Everything already said (a signal during the start, exits) is heard before
                # claiming: a task claimed only to be handed back costs it an attempt.
                self._handle_queued_events()
                self._start_ready()
                self._exchange()
                self._start_ready()
                if not (self._jobs or self._ready or self._exchanging or self._may_claim()):
                    break
                self._wait_for_an_event()
        finally:
            try:
                self._abandon_jobs()
                self._settle_exchange()
                self._report_left()
                self._hand_back_ready()
            finally:
                self._readers.shutdown(wait=False)
                self._exchange_api.close()
                self._reporter.close()
                self._heartbeat.close()
        return self._outcome()

    # Claiming and starting

    def _may_claim(self) -> bool:
        limits = self._limits
        return not (
            self._stop is not None
            or self._drained
            or (limits.max_tasks is not None and self._claimed >= limits.max_tasks)
            or (limits.time_limit is not None and self._elapsed() >= limits.time_limit)
        )

    def _exchange(self) -> None:
        """Claims what the free slots and the queue of tasks claimed ahead want (`Pace`), and
        reports the tasks whose commands succeeded, in one request sent from the exchanging
        thread: a command that exits starts the next task at once, and the server hears from
        the worker once per few tasks instead of twice per task."""
        if self._exchanging:
            return
        wanted = self._wanted()
        short = (
            len(self._jobs) + len(self._ready) < self._slots
            or len(self._ready) <= self._pace.refill_below()
        )
        claiming = wanted > 0 and short
        reporting = bool(self._succeeded) and (
            claiming
            or not self._may_claim()
            or len(self._succeeded) >= self._pace.report_at()
            or (self._report_due is not None and self._clock() >= self._report_due)
        )
        if not claiming and not reporting:
            return
        reported = self._succeeded[:MAX_CLAIM_COUNT]
        self._succeeded = self._succeeded[MAX_CLAIM_COUNT:]
        self._report_due = self._clock() + REPORT_WITHIN_SECONDS if self._succeeded else None
        self._exchanging = True
        self._exchanger.submit(self._send_exchange, reported, wanted if claiming else 0)

    def _send_exchange(self, reported: list[int], count: int) -> None:
        try:
            claims, lost = self._exchange_api.finish_and_claim(
                self._run_uuid, self._worker_uuid, reported, count
            )
        except Exception as error:  # raised in the main thread, as its own calls raise
            self._events.put(_ExchangeFailed(error, reported))
        else:
            self._events.put(_Exchanged(reported, count, claims, lost))

    def _on_exchange_failed(self, error: Exception, reported: list[int]) -> None:
        """A claim whose answer was lost (the server died while answering, a proxy dropped
        the connection) may or may not have happened: its successes are reported again, which
        changes nothing if they were, and whatever it claimed comes back when its lease ends.
        Giving up instead would leave commands that ran to be run again by other workers."""
        self._report_again(reported)
        self._lost_answers += 1
        if not _answer_lost(error) or self._lost_answers > MAX_LOST_ANSWERS:
            raise error
        logger.warning("the answer to a claim was lost (%s); reporting its tasks again", error)

    def _report_again(self, reported: list[int]) -> None:
        """Successes whose report may not have landed go back first in line."""
        self._succeeded[:0] = reported

    def _on_exchanged(self, answer: _Exchanged) -> None:
        self._exchanging = False
        self._lost_answers = 0
        for task in answer.reported:
            self._let_go(task)
        for task in answer.lost:
            logger.warning("task %d: another worker has it now", task)
        self._count_reported(answer.reported, answer.lost)
        if answer.count and not answer.claims:
            self._drained = True
        self._claimed += len(answer.claims)
        for claim in answer.claims:
            self._ready.append(claim)
            self._heartbeat.hold(claim.task)

    def _settle_exchange(self) -> None:
        """Waits for the exchange in flight, if any, so that what it claimed is handed back."""
        self._exchanger.shutdown(wait=True)
        while self._exchanging:
            event = self._events.get()
            if isinstance(event, _Exchanged):
                self._on_exchanged(event)
            elif isinstance(event, _ExchangeFailed):
                self._exchanging = False
                self._report_again(event.reported)

    def _report_left(self) -> None:
        """Reports the successes not reported yet (the worker is stopping, or giving up), if
        the server answers: each one reported is a task no other worker runs again."""
        if not self._succeeded:
            return
        reported, self._succeeded = self._succeeded[:MAX_CLAIM_COUNT], []
        try:
            _, lost = self._api.finish_and_claim(self._run_uuid, self._worker_uuid, reported, 0)
        except (requests.RequestException, UnexpectedStatus) as error:
            logger.warning("could not report %d tasks done: %s", len(reported), error)
            return
        self._count_reported(reported, lost)

    def _count_reported(self, reported: list[int], lost: list[int]) -> None:
        """Counts the tasks reported done: those another worker held by then are lost."""
        self._done += len(reported) - len(lost)
        self._lost += len(lost)

    def _let_go(self, task: int) -> None:
        """No more heartbeats for the task: it is reported, or handed back."""
        self._heartbeat.drop(task)

    def _wanted(self) -> int:
        """How many tasks to claim now: enough for the free slots and the queue."""
        if not self._may_claim():
            return 0
        count = self._slots + self._pace.ahead() - len(self._jobs) - len(self._ready)
        if self._limits.max_tasks is not None:
            count = min(count, self._limits.max_tasks - self._claimed)
        return max(0, min(count, MAX_CLAIM_COUNT))

    def _start_ready(self) -> None:
        while self._ready and len(self._jobs) < self._slots and self._stop is None:
            self._start(self._ready.popleft())

    def _hand_back_ready(self) -> None:
        """Hands back the tasks claimed ahead and never started."""
        while self._ready:
            task = self._ready.popleft().task
            self._let_go(task)
            if self._update(task, {"status": "waiting"}):
                self._handed_back += 1

    def _start(self, claim: Claim) -> None:
        environment = self._command.environment(claim, self._run_uuid, self._environ)
        try:
            job = Job.start(
                claim,
                self._command,
                environment,
                self._output,
                self._error_output,
                self._reporter.report,
                lambda task, returncode: self._events.put(_Exited(task, returncode)),
                self._readers,
                self._results,
                self._tagged,
                self._program,
            )
        except OSError as error:
            # It will not start for the next task either: stop taking tasks, and hand this
            # one back for a worker that can.
            problem = f"cannot run {self._command.argv[0]}: {error}"
            logger.error("%s", problem)
            self._failed += 1
            self._update(claim.task, {"status": "waiting", "error": problem})
            self._request_stop(_Stop(f"cannot run {self._command.argv[0]}", 1, hard=False))
            return
        job.started = self._clock()
        self._jobs[claim.task] = job

    # Events and deadlines

    def _wait_for_an_event(self) -> None:
        deadlines = [job.kill_at for job in self._jobs.values() if job.kill_at is not None]
        if self._report_due is not None and not self._exchanging:
            deadlines.append(self._report_due)
        hard_limit = self._limits.hard_time_limit
        if hard_limit is not None and (self._stop is None or not self._stop.hard):
            deadlines.append(self._started + hard_limit)
        timeout = max(0.0, min(deadlines) - self._clock()) if deadlines else None
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            return  # a deadline: the loop checks the clock next
        self._handle(event)

    def _handle_queued_events(self) -> None:
        while True:
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                return
            self._handle(event)

    def _handle(self, event: _Event) -> None:
        match event:
            case _Exited(task, returncode):
                self._on_exit(task, returncode)
            case _Lost(task):
                self._on_lost(task)
            case _Interrupted(signum):
                self._on_interrupt(signum)
            case _Finish():
                self._request_stop(_Stop("asked to finish", 0, hard=False))
            case _Exchanged():
                self._on_exchanged(event)
            case _ExchangeFailed(error, reported):
                self._exchanging = False
                self._on_exchange_failed(error, reported)

    def _check_the_clock(self) -> None:
        now = self._clock()
        hard_limit = self._limits.hard_time_limit
        if hard_limit is not None and now >= self._started + hard_limit:
            self._request_stop(_Stop("reached the hard time limit", 0, hard=True))
        for job in self._jobs.values():
            if job.kill_at is not None and job.kill_at <= now:
                logger.warning("task %d: the command did not stop; killing it", job.claim.task)
                job.kill()

    def _on_exit(self, task: int, returncode: int) -> None:
        job = self._jobs.pop(task, None)
        if job is None:
            return
        self._pace.finished(self._clock() - job.started)
        progress = self._unsent_progress(task)
        if job.lost or job.stopped or returncode != 0:
            self._let_go(task)
        if job.lost:
            self._lost += 1
        elif job.stopped:
            if self._update(task, {**progress, "status": "waiting"}):
                self._handed_back += 1
        elif returncode == 0:
            # Reported with the next claim, or soon; its lease is kept until then.
            if not self._succeeded:
                self._report_due = self._clock() + REPORT_WITHIN_SECONDS
            self._succeeded.append(task)
            self._failing.clear()
        else:
            self._on_failure(job, returncode, progress)

    def _on_failure(self, job: Job, returncode: int, progress: dict[str, float]) -> None:
        """Tells the server the attempt failed, how and with what last words: the server
        hands the task out again while the run allows more attempts, else marks it failed."""
        claim = job.claim
        self._failed += 1
        self._failing.add(claim.task)
        # A run without a limit on attempts keeps a failure as it is.
        out_of_attempts = self._max_attempts is None or claim.attempts >= self._max_attempts
        logger.warning(
            "task %d: the command %s; task %s",
            claim.task,
            _describe_exit(returncode),
            "failed" if out_of_attempts else "to be tried again",
        )
        self._update(
            claim.task,
            {
                **progress,
                "status": "failed",
                "exitCode": returncode,
                "error": job.error_tail.text(),
            },
        )
        # A task handed back is there to be claimed again, by this worker too.
        self._drained = self._drained and out_of_attempts
        limit = self._limits.max_failures
        if limit and len(self._failing) >= limit:
            self._request_stop(
                _Stop(f"the commands of {limit} tasks failed in a row", 1, hard=False)
            )

    def _on_lost(self, task: int) -> None:
        ahead = [claim for claim in self._ready if claim.task == task]
        if ahead:
            logger.warning("task %d: another worker has it now", task)
            self._ready.remove(ahead[0])
            self._lost += 1
            return
        job = self._jobs.get(task)
        if job is None or job.lost:
            return
        logger.warning("task %d: another worker has it now; stopping its command", task)
        job.lost = True
        job.stop(self._clock() + self._limits.grace)

    def _on_interrupt(self, signum: int) -> None:
        if self._stop is not None and self._stop.hard:
            # Asked twice: no more waiting for the commands.
            for job in self._jobs.values():
                job.kill()
            return
        name = signal.Signals(signum).name
        self._request_stop(_Stop(f"stopped by {name}", 128 + signum, hard=True))

    def _request_stop(self, stop: _Stop) -> None:
        if self._stop is None or (stop.hard and not self._stop.hard):
            self._stop = stop
        if stop.hard:
            kill_at = self._clock() + self._limits.grace
            for job in self._jobs.values():
                if not job.stopped:
                    job.stop(kill_at)

    def _report_lost(self, task: int) -> None:
        self._events.put(_Lost(task))

    # Talking to the server

    def _unsent_progress(self, task: int) -> dict[str, float]:
        percent = self._reporter.settle(task)
        return {} if percent is None else {"percentCompleted": percent}

    def _update(self, task: int, fields: Mapping[str, object]) -> bool:
        """Changes a task this worker holds; False, having said why, when it could not."""
        try:
            self._api.update_task(
                self._run_uuid, task, {**fields, "worker_uuid": self._worker_uuid}
            )
        except TaskLost:
            logger.warning("task %d: another worker has it now", task)
            self._lost += 1
            return False
        except (UnexpectedStatus, requests.RequestException) as error:
            logger.error("task %d: could not tell the server %s: %s", task, dict(fields), error)
            self._errors += 1
            return False
        return True

    def _abandon_jobs(self) -> None:
        """After an error: stops the commands still running and hands their tasks back."""
        if not self._jobs:
            return
        deadline = self._clock() + self._limits.grace
        for job in self._jobs.values():
            job.stop(deadline)
        for job in self._jobs.values():
            try:
                job.process.wait(max(0.0, deadline - self._clock()))
            except subprocess.TimeoutExpired:
                job.kill()
        for task, job in self._jobs.items():
            if not job.lost and self._update(
                task, {**self._unsent_progress(task), "status": "waiting"}
            ):
                self._handed_back += 1
        self._jobs.clear()

    # The end

    def _elapsed(self) -> float:
        return self._clock() - self._started

    def _outcome(self) -> Outcome:
        if self._stop is not None:
            reason, exit_code = self._stop.reason, self._stop.exit_code
        elif self._drained:
            reason, exit_code = "no task left", 0
        elif self._limits.max_tasks is not None and self._claimed >= self._limits.max_tasks:
            reason, exit_code = "claimed as many tasks as allowed", 0
        else:
            reason, exit_code = "reached the time limit", 0
        if exit_code == 0 and (self._failed or self._errors):
            exit_code = 1
        return Outcome(
            done=self._done,
            failed=self._failed,
            handed_back=self._handed_back,
            lost=self._lost,
            reason=reason,
            exit_code=exit_code,
        )


def _describe_exit(returncode: int) -> str:
    if returncode < 0:
        return f"was killed by {signal.Signals(-returncode).name}"
    return f"exited with status {returncode}"
