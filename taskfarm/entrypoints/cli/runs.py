"""`taskfarm runs`: create, list, inspect, watch, reset and delete the runs of a server, over
HTTP."""

from __future__ import annotations

import datetime as dt
import json
import math
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO

import click

from taskfarm.client.run import DEFAULT_LEASE_SECONDS, DEFAULT_MAX_ATTEMPTS
from taskfarm.client.session import Retries
from taskfarm.client.watching import Progress, RateWindow, progress_line
from taskfarm.entrypoints.cli.options import (
    Server,
    connected,
    echo_json,
    json_option,
    parsed_with,
    server_options,
    table,
)
from taskfarm.entrypoints.summaries import duration, last_line, percent, shown_input

#: The exit status of a command stopped with Ctrl-C, as shells report it.
INTERRUPTED = 130


#: The most indices a retry sends in one request: the server's limit.
RETRY_CHUNK = 10_000
#: The most indices `runs retry --tasks` takes: more are meant as `--failed`, or a restart.
MAX_RETRIED = 1_000_000


def parse_task_list(text: str) -> list[int]:
    """Task indices from `3,8,10-20` (ranges include both ends), in order, each once."""
    indices: set[int] = set()
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        try:
            start = int(first)
            stop = int(last) if dash else start
        except ValueError:
            raise ValueError(
                f"{part.strip()!r} is not a task index or a range: write 3,8,10-20"
            ) from None
        if start < 0 or stop < start:
            raise ValueError(f"{part.strip()!r} is not a range of task indices: write 10-20")
        if len(indices) + stop - start + 1 > MAX_RETRIED:
            raise ValueError(f"more than {MAX_RETRIED} tasks: retry them with --failed")
        indices.update(range(start, stop + 1))
    return sorted(indices)


def failure_record(report: dict[str, Any]) -> dict[str, Any]:
    """A failed task as `runs failed --json` prints it: flat, its last attempt's fields first
    among the task's."""
    attempt = report.get("lastAttempt") or {}
    return {
        "index": report["task"],
        **({"input": report["input"]} if "input" in report else {}),
        "attempts": report["attempts"],
        "exitCode": attempt.get("exitCode"),
        "error": attempt.get("error"),
        "outcome": attempt.get("outcome"),
        "worker": attempt.get("worker"),
        "hostname": attempt.get("hostname"),
        "started": attempt.get("started"),
        "ended": attempt.get("ended"),
    }


def run_state(run: dict[str, Any]) -> str:
    """Where a run is, in a word: finished (every task done or failed), running (some task
    computing), new (nothing touched), or idle (begun, nobody computing now)."""
    if run["numDone"] + run["numFailed"] == run["numTasks"]:
        return "finished"
    if run["numComputing"]:
        return "running"
    if run["numWaiting"] == run["numTasks"]:
        return "new"
    return "idle"


@click.group()
def runs() -> None:
    """Create, list, inspect, watch, reset, retry and delete runs on a taskfarm server."""


#: `--max-attempts 0`: as many attempts as the server allows.
UNLIMITED_ATTEMPTS = 1_000_000


# Unknown options taken as arguments: `create -1` is refused as a number of tasks, not as an
# option nobody defined.
@runs.command(context_settings={"ignore_unknown_options": True})
@click.argument("num_tasks", type=click.IntRange(min=1), metavar="NUM_TASKS", required=False)
@click.option(
    "--each-line",
    type=click.File("rb"),
    help="One task per line of this file with something on it ('-': standard input); the "
    "line is the task's input, {} in taskfarm work.",
)
@click.option(
    "--from-json",
    type=click.File("rb"),
    help="One task per element of the JSON list in this file; the element is its input.",
)
@click.option(
    "--sweep",
    "axes",
    multiple=True,
    metavar="NAME=V1,V2,...",
    help="An axis of a parameter sweep, given once per axis: one task per combination, the "
    "first axis changing slowest; {NAME} in taskfarm work is the task's value.",
)
@click.option(
    "--lease",
    type=click.IntRange(min=0),
    default=DEFAULT_LEASE_SECONDS,
    show_default=True,
    help="Seconds a worker keeps a task without a word before it goes to another worker "
    "(taskfarm work keeps it with heartbeats however long the command runs); 0: no lease.",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=0),
    default=DEFAULT_MAX_ATTEMPTS,
    show_default=True,
    help="Attempts a task gets (failed commands and lost leases count) before it is marked "
    f"failed; 0: as many as the server allows ({UNLIMITED_ATTEMPTS:,}).",
)
@click.option(
    "--name",
    help="What to call the run instead of its uuid, in every command and on the dashboard: "
    "letters, digits, '.', '_' and '-', unique.",
)
@json_option
@server_options
def create(
    num_tasks: int | None,
    each_line: BinaryIO | None,
    from_json: BinaryIO | None,
    axes: tuple[str, ...],
    lease: int,
    max_attempts: int,
    name: str | None,
    as_json: bool,
    server: Server,
) -> None:
    """Create a run and print its uuid, so that a batch script can write
    RUN=$(taskfarm runs create 1000). Its tasks are NUM_TASKS indices, or the lines of a file
    (--each-line), the elements of a JSON list (--from-json), or the combinations of a sweep
    (--sweep a=1,2,3 --sweep b=x,y): one of them."""
    given = [num_tasks is not None, each_line is not None, from_json is not None, bool(axes)]
    if sum(given) != 1:
        raise click.UsageError("give NUM_TASKS, --each-line, --from-json or --sweep: one of them")
    policy = (lease or None, max_attempts or UNLIMITED_ATTEMPTS, name)
    with connected(server) as api:
        if each_line is not None:
            created = api.upload_run(each_line, "text/plain", *policy)
        elif from_json is not None:
            created = api.upload_run(_json_lines(from_json), "application/x-ndjson", *policy)
        else:
            sweep = dict(_axis(axis) for axis in axes) if axes else None
            created = api.create_run(num_tasks, *policy, sweep=sweep)
    if as_json:
        echo_json(created)
    else:
        click.echo(created["uuid"])


@runs.command("list")
@json_option
@server_options
def list_runs(as_json: bool, server: Server) -> None:
    """List the runs, oldest first, with how far each has got."""
    with connected(server) as api:
        listed = api.list_runs()
    if as_json:
        echo_json(listed)
    else:
        now = dt.datetime.now(dt.UTC)
        rows = [
            (
                run["id"],
                run["uuid"],
                run.get("name") or "-",
                run["numTasks"],
                run["numDone"],
                run["numFailed"],
                run["numComputing"],
                percent(run["percentDone"]).replace(" ", ""),
                run_state(run),
                _age(run.get("created"), now),
            )
            for run in listed
        ]
        headers = (
            "ID",
            "UUID",
            "NAME",
            "TASKS",
            "DONE",
            "FAILED",
            "COMPUTING",
            "PROGRESS",
            "STATE",
            "AGE",
        )
        click.echo(table(headers, rows))


@runs.command()
@click.argument("uuid", metavar="RUN")
@json_option
@server_options
def info(uuid: str, as_json: bool, server: Server) -> None:
    """Show a run's progress and settings."""
    with connected(server) as api:
        details = api.run_info(uuid)
    if as_json:
        echo_json(details)
    else:
        # For people: a percentage to a tenth, as the dashboard shows it; --json is exact.
        shown = {**details, "percentDone": percent(details["percentDone"])}
        click.echo(table(("FIELD", "VALUE"), list(shown.items())))


@runs.command()
@click.argument("uuid", metavar="RUN")
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between looks at the run.",
)
@server_options
def watch(uuid: str, interval: float, server: Server) -> None:
    """Show a run's progress, with its rate and the time left, until every task is done
    (or has failed). Ctrl-C stops watching, not the run."""
    redraw = sys.stdout.isatty()
    rates = RateWindow()
    shown = ""
    # Watching is not a prompt: it rides out a server restart as workers do.
    with connected(server, Retries()) as api:
        try:
            while True:
                progress = Progress.from_info(api.run_info(uuid))
                rates.add(time.monotonic(), progress.tasks_worth_done)
                line = progress_line(progress, rates.rate())
                if redraw:
                    click.echo("\r" + line.ljust(len(shown)), nl=False)
                elif line != shown:
                    click.echo(line)
                shown = line
                if progress.finished:
                    break
                time.sleep(interval)
        except KeyboardInterrupt:
            if redraw:
                click.echo()
            sys.exit(INTERRUPTED)
    if redraw:
        click.echo()


@runs.command()
@click.argument("uuid", metavar="RUN")
@click.option(
    "--all",
    "everything",
    is_flag=True,
    help="Start every task afresh, finished ones included.",
)
@server_options
def reset(uuid: str, everything: bool, server: Server) -> None:
    """Put the run's unfinished tasks back to waiting, keeping their progress; with --all,
    every task, at 0%. Workers still computing tasks of the run lose them."""
    with connected(server) as api:
        api.restart_run(uuid, everything=everything)
    click.echo(f"Reset {'every' if everything else 'every unfinished'} task of run {uuid}.")


@runs.command()
@click.argument("uuid", metavar="RUN")
@json_option
@server_options
def failed(uuid: str, as_json: bool, server: Server) -> None:
    """List the run's failed tasks, lowest index first: how many attempts each had, and how
    its last one ended (exit status, host, the last line of its error output; all of it
    with --json)."""
    with connected(server) as api:
        records = [failure_record(report) for report in api.list_tasks(uuid, "failed")]
    if as_json:
        echo_json(records)
        return
    with_inputs = any("input" in record for record in records)
    rows = [
        (
            record["index"],
            *([shown_input(record.get("input"), 40)] if with_inputs else []),
            record["attempts"],
            record["exitCode"] if record["exitCode"] is not None else record["outcome"],
            record["hostname"],
            last_line(record["error"]),
        )
        for record in records
    ]
    headers = ("TASK", *(["INPUT"] if with_inputs else []), "ATTEMPTS", "EXIT", "HOST")
    click.echo(table((*headers, "LAST ERROR LINE"), rows))


@runs.command()
@click.argument("uuid", metavar="RUN")
@click.option("--failed", "every_failed", is_flag=True, help="Retry every failed task.")
@click.option(
    "--tasks",
    metavar="LIST",
    callback=parsed_with(parse_task_list),
    help="Retry these tasks, if finished (failed or done): indices and ranges, 3,8,10-20.",
)
@server_options
def retry(uuid: str, every_failed: bool, tasks: list[int] | None, server: Server) -> None:
    """Put failed tasks back to waiting, with fresh attempts, to be claimed again (for
    instance once the bug that failed them is fixed); with --tasks, the finished ones among
    those, done ones included. Tasks computing or waiting are left as they are."""
    if every_failed == (tasks is not None):
        raise click.UsageError("say which tasks to retry: --failed or --tasks LIST")
    with connected(server) as api:
        if tasks is None:
            retried = api.retry(uuid)
        else:
            chunks = range(0, len(tasks), RETRY_CHUNK)
            retried = sum(api.retry(uuid, tasks[i : i + RETRY_CHUNK]) for i in chunks)
    click.echo(f"Retried {retried} task{'' if retried == 1 else 's'} of run {uuid}.")


@runs.command()
@click.argument("uuid", metavar="RUN")
@server_options
def delete(uuid: str, server: Server) -> None:
    """Delete a run and its tasks."""
    with connected(server) as api:
        api.delete_run(uuid)
    click.echo(f"Deleted run {uuid}.")


def _age(created: str | None, now: dt.datetime) -> str:
    """How long ago a run was created, for people; '-' for a run made before runs kept it."""
    if created is None:
        return "-"
    seconds = (now - dt.datetime.fromisoformat(created)).total_seconds()
    return duration(math.floor(seconds)).replace(" ", "")


def _axis(text: str) -> tuple[str, list[str]]:
    """`NAME=V1,V2,...`: an axis of a sweep, its values strings."""
    name, equals, values = text.partition("=")
    if not equals or not name or not values:
        raise click.BadParameter(f"{text!r} is not NAME=V1,V2,...", param_hint="--sweep")
    return name, values.split(",")


def _json_lines(file: BinaryIO) -> Iterator[bytes]:
    """The elements of the JSON list in `file`, one per line, as the upload takes them; the
    file is read first, so that one that is no JSON list fails before anything is sent."""
    try:
        elements = json.load(file)
    except ValueError as error:
        raise click.BadParameter(
            f"{file.name} is not JSON: {error}", param_hint="--from-json"
        ) from None
    if not isinstance(elements, list):
        raise click.BadParameter(f"{file.name} holds no JSON list", param_hint="--from-json")
    return (json.dumps(element, ensure_ascii=False).encode() + b"\n" for element in elements)
