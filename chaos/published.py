"""A worker of the unchanged published client (`taskfarm-worker` 0.4.0): claims tasks until
none is left, noting each it runs in its log of executions. Usage:
`python -m chaos.published URL TOKEN RUN LOG`."""

from __future__ import annotations

import sys
import time

from taskfarm_worker import TaskFarmWorker

from chaos.workload import TASK_SECONDS


def main(url: str, token: str, run: str, log: str) -> None:
    # A worker token as the username, with no password: the client logs in with it.
    worker = TaskFarmWorker(token, "", run, url_base=url)
    with open(log, "a", buffering=1) as executions:
        while (task := worker.task) is not None:
            time.sleep(TASK_SECONDS)
            executions.write(f"{task}\n")
            worker.update(50.0)
            # The client marks a task done only once its progress is 100%.
            worker.update(100.0)
            worker.done()


if __name__ == "__main__":
    main(*sys.argv[1:5])
