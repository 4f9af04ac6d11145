"""One command running for one task: its process, and the thread that reads its output."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import IO, BinaryIO

import attrs

from taskfarm.client.api import Claim
from taskfarm.client.commands import CommandTemplate
from taskfarm.client.error_tail import ErrorTail
from taskfarm.client.progress import parse_progress


class OutputLines:
    """Where the commands' output goes: whole lines, so that commands running side by side
    never tear each other's lines. A closed stream (`taskfarm work ... | head`) drops them."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: bytes, tag: bytes = b"") -> None:
        """Writes `line`, after `tag` (the task's, as GNU parallel's --tag puts it)."""
        with self._lock:
            try:
                self._stream.write(tag + line)
                self._stream.flush()
            except (OSError, ValueError):
                pass


@attrs.define
class Job:
    """The command of one task. Stopping it signals its whole process group, so that a shell
    script stops along with the programs it started."""

    claim: Claim
    process: subprocess.Popen[bytes]
    error_tail: ErrorTail
    #: The worker stopped it (a signal, a time limit): its task goes back, whatever the exit.
    stopped: bool = False
    #: Another worker has its task now: nothing it did is reported.
    lost: bool = False
    #: When (`time.monotonic()`) to kill it if it has not exited by then.
    kill_at: float | None = None
    #: When (`time.monotonic()`) it started.
    started: float = 0.0

    @classmethod
    def start(
        cls,
        claim: Claim,
        command: CommandTemplate,
        environment: Mapping[str, str],
        output: OutputLines,
        errors: OutputLines,
        on_progress: Callable[[int, float], object],
        on_exit: Callable[[int, int], object],
        readers: Executor,
        results: Path | None = None,
        tagged: bool = False,
        program: str | None = None,
    ) -> Job:
        """Starts the command; `on_progress(task, percent)` for each progress line it prints,
        `on_exit(task, returncode)` once it has exited and its output is read, both from the
        threads of `readers` that read its output and error output: a pool, so that no
        command waits for a thread to start, with two free threads for each job. Its output
        goes on to `output` and its error output to `errors`, each line after the task's
        index and a tab when `tagged`, and, given `results`, to the files `<task>.out` and
        `<task>.err` there, untagged. `program` is where the command's program is, if known.
        Raises OSError when the command cannot be started (or the files opened)."""
        task = claim.task
        with contextlib.ExitStack() as opened:
            saved_output, saved_errors = (
                (None, None)
                if results is None
                else (
                    opened.enter_context(open(results / f"{task}.out", "wb")),
                    opened.enter_context(open(results / f"{task}.err", "wb")),
                )
            )
            process = subprocess.Popen(
                command.arguments(claim),
                executable=program,
                env=dict(environment),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                process_group=0,
            )
            # Started: the readers close the files once the command's output ends.
            opened.pop_all()
        tail = ErrorTail()
        tag = f"{task}\t".encode() if tagged else b""
        assert process.stdout is not None
        assert process.stderr is not None
        error_reader = readers.submit(
            _pass_on,
            process.stderr,
            [lambda line: errors.write(line, tag), tail.add],
            saved_errors,
        )
        readers.submit(
            _read_output,
            process,
            task,
            output,
            tag,
            saved_output,
            error_reader,
            on_progress,
            on_exit,
        )
        return cls(claim, process, tail)

    def stop(self, kill_at: float) -> None:
        """Asks the command to stop (SIGTERM), to be killed at `kill_at` if it has not."""
        self.stopped = True
        self.kill_at = kill_at
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self.stopped = True
        self.kill_at = None
        self._signal(signal.SIGKILL)

    def _signal(self, signum: int) -> None:
        if self.process.returncode is not None:
            return  # reaped: its process group may belong to somebody else by now
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)


def _read_output(
    process: subprocess.Popen[bytes],
    task: int,
    output: OutputLines,
    tag: bytes,
    saved: BinaryIO | None,
    error_reader: Future[None],
    on_progress: Callable[[int, float], object],
    on_exit: Callable[[int, int], object],
) -> None:
    assert process.stdout is not None
    try:
        with process.stdout, saved or contextlib.nullcontext():
            for line in process.stdout:
                percent = parse_progress(line)
                if percent is None:
                    output.write(line, tag)
                    if saved is not None:
                        saved.write(line)
                else:
                    on_progress(task, percent)
    finally:
        returncode = process.wait()
        error_reader.result()
        on_exit(task, returncode)


def _pass_on(
    stream: IO[bytes], destinations: list[Callable[[bytes], object]], saved: BinaryIO | None
) -> None:
    with stream, saved or contextlib.nullcontext():
        for line in stream:
            for destination in destinations:
                destination(line)
            if saved is not None:
                saved.write(line)
