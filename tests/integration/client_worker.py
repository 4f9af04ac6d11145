"""A worker process as users write them with the published client: one line per task done.

Usage: client_worker.py API_URL USER PASSWORD RUN_UUID [REQUEUE_EVERY]
With REQUEUE_EVERY=k, every k-th task claimed is handed back as waiting instead of finished.
"""

from __future__ import annotations

import sys

from taskfarm_worker import TaskFarmWorker


def main() -> None:
    api, user, password, run_uuid = sys.argv[1:5]
    requeue_every = int(sys.argv[5]) if len(sys.argv) > 5 else 0
    worker = TaskFarmWorker(user, password, run_uuid, url_base=api)
    for claimed, task in enumerate(worker.tasks, start=1):
        if requeue_every and claimed % requeue_every == 0:
            worker.setTaskInfo(task, "status", "waiting")
            worker.done()  # below 100%, done() lets go of the task without marking it done
            continue
        worker.update(50.0)
        worker.update(100.0)
        worker.done()
        print(task, flush=True)


if __name__ == "__main__":
    main()
