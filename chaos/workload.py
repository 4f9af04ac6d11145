"""The workers: `taskfarm work` and the published client side by side, each restarted when
it dies (as a batch system resubmits a failed job), each noting the tasks it runs."""

from __future__ import annotations

import collections
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import attrs

from bench.common import VENV_BIN

#: How long each task takes: short, yet long enough that a run on the fastest backend lasts
#: through every fault (24 slots: at most 480 tasks a second).
TASK_SECONDS = 0.05
#: What each task runs: it notes its index in the worker's log of executions.
COMMAND = ["sh", "-c", f'sleep {TASK_SECONDS}; echo "$TASKFARM_TASK" >> "$CHAOS_EXECUTIONS"']


@attrs.define
class Slot:
    """One worker, started again whenever it exits with an error, until the run is done."""

    name: str
    command: list[str]
    env: dict[str, str]
    work: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0

    @property
    def executions(self) -> Path:
        return self.work / f"{self.name}.executions"

    @property
    def log(self) -> Path:
        return self.work / f"{self.name}.log"

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                self.command,
                env={**self.env, "CHAOS_EXECUTIONS": str(self.executions)},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )


class Workers:
    def __init__(
        self,
        url: str,
        token: str,
        run: str,
        work: Path,
        env: Mapping[str, str],
        count: int,
        apart: str,
    ) -> None:
        """`count` workers; the first runs in the network namespace `apart`, to be cut off."""
        base = {**env, "TASKFARM_URL": url.removesuffix("api/"), "TASKFARM_TOKEN": token}
        ours = [str(VENV_BIN / "taskfarm"), "work", run, "-j", "2", "--", *COMMAND]
        published = [sys.executable, "-m", "chaos.published", url, token, run]
        self.slots = [
            Slot(f"work-{i}", ours, base, work)
            if i % 2 == 0
            else Slot(
                f"published-{i}", [*published, str(work / f"published-{i}.executions")], base, work
            )
            for i in range(count)
        ]
        self.apart = self.slots[0]
        self.apart.command = ["ip", "netns", "exec", apart, *self.apart.command]
        #: Whether the run still has tasks to do: a worker that found none to claim while
        #: others were still held is started again, as a batch system's next job would be.
        self.unfinished: Callable[[], bool] = lambda: False
        self._stopped = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def start(self) -> None:
        for slot in self.slots:
            slot.start()
        self._watcher.start()

    def _watch(self) -> None:
        while not self._stopped.wait(0.5):
            for slot in self.slots:
                assert slot.process is not None
                code = slot.process.poll()
                if code is None or self._stopped.is_set():
                    continue
                if code != 0:
                    slot.restarts += 1
                    slot.start()
                elif self.unfinished():
                    slot.start()

    def running(self) -> int:
        return sum(slot.process is not None and slot.process.poll() is None for slot in self.slots)

    def stop(self) -> None:
        self._stopped.set()
        self._watcher.join()
        for slot in self.slots:
            if slot.process is not None and slot.process.poll() is None:
                slot.process.kill()
                slot.process.wait()

    def wait(self, seconds: float) -> bool:
        """Whether the run was done and every worker exited within `seconds`."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if not self.unfinished() and self.running() == 0:
                return True
            time.sleep(0.5)
        return False

    def executions(self) -> dict[int, list[str]]:
        """The workers each task ran on, once per time it ran."""
        ran: dict[int, list[str]] = collections.defaultdict(list)
        for slot in self.slots:
            if slot.executions.exists():
                for line in slot.executions.read_text().split():
                    ran[int(line)].append(slot.name)
        return ran

    def lost_leases(self) -> int:
        """Updates refused because another worker had the task (409s, as the workers said)."""
        said = ("another worker has it now", "no longer this worker's", "[HTTP 409]")
        return sum(
            sum(any(s in line for s in said) for line in slot.log.read_text().splitlines())
            for slot in self.slots
            if slot.log.exists()
        )

    def restarts(self) -> int:
        return sum(slot.restarts for slot in self.slots)
