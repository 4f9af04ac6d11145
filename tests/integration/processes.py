"""Servers a test starts for itself: waiting for one to answer."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

STARTUP_SECONDS = 30


def wait_until_ready(
    ready: Callable[[], bool], process: subprocess.Popen[bytes], name: str
) -> None:
    """Waits until `ready()`; fails the test if the server's `process` exits first, or if
    `STARTUP_SECONDS` pass."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while not ready():
        assert process.poll() is None, f"{name} exited at start"
        assert time.monotonic() < deadline, f"{name} did not start in {STARTUP_SECONDS} s"
        time.sleep(0.1)


@contextmanager
def serving(
    command: Sequence[str], ready: Callable[[], bool], name: str, **options: Any
) -> Iterator[subprocess.Popen[bytes]]:
    """Starts a server, waits until `ready()`, and kills it on the way out (its whole process
    group when `options` start it in a session of its own), unless it exited already."""
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **options
    )
    try:
        wait_until_ready(ready, process, name)
        yield process
    finally:
        if process.poll() is None:
            if options.get("start_new_session"):
                os.killpg(process.pid, signal.SIGKILL)
            else:
                process.kill()
        process.wait()
