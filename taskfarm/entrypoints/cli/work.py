"""`taskfarm work RUN -- COMMAND...`: run a command once for each task of a run."""

from __future__ import annotations

import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

import click

from taskfarm.client.commands import CommandTemplate
from taskfarm.client.limits import Limits, Outcome
from taskfarm.client.runner import CommandRunner
from taskfarm.client.session import DEFAULT_RETRIES
from taskfarm.entrypoints.cli.options import Server, connected, duration_option, server_options


@click.command(context_settings={"max_content_width": 100})
@click.argument("run", metavar="RUN")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "-j",
    "--jobs",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Commands to run at once.",
)
@click.option("--max-tasks", type=click.IntRange(min=1), help="Claim at most this many tasks.")
@duration_option(
    "--time-limit",
    help="Claim no task after this long (3600, 90m, 23h); running commands finish.",
)
@duration_option(
    "--hard-time-limit",
    help="After this long, stop running commands and hand their tasks back.",
)
@duration_option(
    "--grace",
    default="10s",
    help="Time a stopped command has to exit after SIGTERM before it is killed.",
)
@click.option(
    "--max-failures",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Give up once the commands of this many different tasks failed with none "
    "succeeding in between (one task failing again counts once); 0: never.",
)
@duration_option(
    "--heartbeat",
    help="Time between heartbeats.  [default: a third of the run's lease; none without one]",
)
@click.option(
    "--tag/--no-tag",
    default=None,
    help="Start each line a command prints with its task's index and a tab, as GNU "
    "parallel's --tag does.  [default: with -j above 1]",
)
@click.option(
    "--results",
    type=click.Path(file_okay=False, writable=True, path_type=Path),
    help="Also write each task's output to DIR/<task>.out and its error output to "
    "DIR/<task>.err (made if missing; a task run again overwrites them).",
    metavar="DIR",
)
@server_options
def work(
    run: str,
    command: tuple[str, ...],
    jobs: int,
    max_tasks: int | None,
    time_limit: float | None,
    hard_time_limit: float | None,
    grace: float,
    max_failures: int,
    heartbeat: float | None,
    tag: bool | None,
    results: Path | None,
    server: Server,
) -> None:
    """Run COMMAND once for each task of RUN (a run's uuid or name), until the run has no task
    left.

    \b
        taskfarm work RUN -- ./simulate --seed {} --out results/{}.h5
        taskfarm work RUN -j 8 --time-limit 23h -- sh -c './step "$TASKFARM_TASK"'

    {} or {task} in COMMAND's arguments becomes the task's index; the command also finds it
    in TASKFARM_TASK, and the run in TASKFARM_RUN. Exit status 0 marks the task done at 100%;
    any other reports the attempt failed, with the exit status and the last lines of the
    command's error output (see them with taskfarm runs failed): the task goes back to be
    claimed again (by this worker or another) while it has attempts left of the run's
    maxAttempts (taskfarm runs create --max-attempts), else it is marked failed; without a
    maxAttempts a failure is final. A command may report progress by printing lines
    `TASKFARM_PROGRESS <percent>`; its other output is passed on, and kept per task with
    --results. While it runs, heartbeats keep the task's lease, however long it takes.

    \b
    Stopping:
      SIGTERM, SIGINT (Ctrl-C)  stop the commands (SIGTERM to each command's process
                                group, SIGKILL after --grace), hand their tasks back at
                                once, and exit; a second signal kills them at once.
      SIGUSR1                   claim no more tasks; running commands finish.
      --time-limit              as SIGUSR1, after that long: for a batch job's wall-clock
                                limit, set it to that limit minus the longest task.
      --hard-time-limit         as SIGTERM, after that long.
    Killed outright (SIGKILL), a worker hands nothing back: give the run a lease
    (taskfarm runs create N --lease S) and its tasks come back by themselves.

    \b
    Exit status: 0 when every command succeeded, 1 when some failed (or the worker
    gave up after --max-failures), 128+N when stopped by signal N.
    """
    if heartbeat is not None and heartbeat <= 0:
        raise click.BadParameter("must be above 0", param_hint="--heartbeat")
    limits = Limits(
        max_tasks=max_tasks,
        time_limit=time_limit,
        hard_time_limit=hard_time_limit,
        max_failures=max_failures,
        grace=grace,
    )
    if results is not None:
        results.mkdir(parents=True, exist_ok=True)
    _log_to_stderr()
    # A wrong address, login or run fails in seconds, as `taskfarm runs` does, before a batch
    # job's time goes by; past that, workers outlast a server restart, retrying for minutes.
    # A name is looked up once: each task's requests then go by uuid.
    with connected(server) as first_look:
        run_uuid = first_look.run_info(run)["uuid"]
    with connected(server, DEFAULT_RETRIES) as api:
        runner = CommandRunner.for_run(
            api,
            run_uuid,
            CommandTemplate(command),
            output=sys.stdout.buffer,
            errors=sys.stderr.buffer,
            jobs=jobs,
            limits=limits,
            heartbeat=heartbeat,
            results=results,
            tagged=jobs > 1 if tag is None else tag,
        )
        with _signals_to(runner):
            outcome = runner.run()
    click.echo(f"taskfarm work: {_summary(outcome)}", err=True)
    sys.exit(outcome.exit_code)


@contextmanager
def _signals_to(runner: CommandRunner) -> Iterator[None]:
    def interrupt(signum: int, frame: FrameType | None) -> None:
        runner.interrupt(signum)

    def finish(signum: int, frame: FrameType | None) -> None:
        runner.finish()

    handlers = {signal.SIGTERM: interrupt, signal.SIGINT: interrupt, signal.SIGUSR1: finish}
    previous = {signum: signal.signal(signum, handler) for signum, handler in handlers.items()}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _log_to_stderr() -> None:
    client_log = logging.getLogger("taskfarm.client")
    if client_log.handlers:
        return  # invoked before in this process
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("taskfarm work: %(message)s"))
    client_log.addHandler(handler)
    client_log.setLevel(logging.INFO)
    client_log.propagate = False


def _summary(outcome: Outcome) -> str:
    counts = [_count(outcome.done, "task") + " done", _count(outcome.failed, "command") + " failed"]
    if outcome.handed_back:
        counts.append(_count(outcome.handed_back, "task") + " handed back")
    if outcome.lost:
        counts.append(_count(outcome.lost, "task") + " taken over by other workers")
    return f"{', '.join(counts)}; {outcome.reason}"


def _count(number: int, thing: str) -> str:
    return f"{number} {thing}{'' if number == 1 else 's'}"
