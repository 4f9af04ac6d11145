"""One command running for one task: its process, and the thread that reads its output."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping
from typing import BinaryIO

import attrs

from taskfarm.client.api import Claim
from taskfarm.client.commands import CommandTemplate
from taskfarm.client.progress import parse_progress


class OutputLines:
    """Where the commands' output goes: whole lines, so that commands running side by side
    never tear each other's lines. A closed stream (`taskfarm work ... | head`) drops them."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: bytes) -> None:
        with self._lock:
            try:
                self._stream.write(line)
                self._stream.flush()
            except (OSError, ValueError):
                pass


@attrs.define
class Job:
    """The command of one task. Stopping it signals its whole process group, so that a shell
    script stops along with the programs it started."""

    claim: Claim
    process: subprocess.Popen[bytes]
    #: The worker stopped it (a signal, a time limit): its task goes back, whatever the exit.
    stopped: bool = False
    #: Another worker has its task now: nothing it did is reported.
    lost: bool = False
    #: When (`time.monotonic()`) to kill it if it has not exited by then.
    kill_at: float | None = None

    @classmethod
    def start(
        cls,
        claim: Claim,
        command: CommandTemplate,
        environment: Mapping[str, str],
        output: OutputLines,
        on_progress: Callable[[int, float], object],
        on_exit: Callable[[int, int], object],
    ) -> Job:
        """Starts the command; `on_progress(task, percent)` for each progress line it prints,
        `on_exit(task, returncode)` once it has exited, both from a thread of the job's own.
        Raises OSError when the command cannot be started."""
        process = subprocess.Popen(
            command.arguments(claim.task),
            env=dict(environment),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            process_group=0,
        )
        threading.Thread(
            target=_read_output,
            args=(process, claim.task, output, on_progress, on_exit),
            name=f"taskfarm-task-{claim.task}",
            daemon=True,
        ).start()
        return cls(claim, process)

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
    on_progress: Callable[[int, float], object],
    on_exit: Callable[[int, int], object],
) -> None:
    assert process.stdout is not None
    try:
        with process.stdout:
            for line in process.stdout:
                percent = parse_progress(line)
                if percent is None:
                    output.write(line)
                else:
                    on_progress(task, percent)
    finally:
        on_exit(task, process.wait())
