"""What the tests of the use cases share: the workers they register, and the time spans they
use. Their fixtures are in `conftest.py`.
"""

from __future__ import annotations

import datetime as dt

from taskfarm.domain import (
    FULL_PROGRESS,
    TaskChange,
    TaskState,
    WorkerRegistration,
)

WORKER = WorkerRegistration(uuid="worker-1", hostname="node1", pid=1234)
OTHER = WorkerRegistration(uuid="worker-2", hostname="node2", pid=99)
LEASE = dt.timedelta(seconds=60)
MICROSECOND = dt.timedelta(microseconds=1)
DONE = TaskChange(progress=FULL_PROGRESS, state=TaskState.DONE)
