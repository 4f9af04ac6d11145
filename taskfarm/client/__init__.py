"""A Python client of the taskfarm server.

`TaskFarm`, `TaskFarmWorker` and `tfRuns` replace those of the published `taskfarm-worker`
client by changing the import; besides, workers keep their tasks' leases with heartbeats, name
themselves in their updates, claim several tasks at once, hand tasks back, and ride out a
server restart with retries. This package needs `requests` and nothing of the server.
"""

from __future__ import annotations

from taskfarm.client.errors import TaskLost, UnexpectedStatus
from taskfarm.client.run import TaskFarm, tfRuns
from taskfarm.client.session import Retries
from taskfarm.client.worker import TaskFarmWorker

__all__ = ["Retries", "TaskFarm", "TaskFarmWorker", "TaskLost", "UnexpectedStatus", "tfRuns"]
