"""CPU seconds spent by a server and by its database while it is under load.

On a machine that other work shares, requests per second move with that work; CPU time per
request hardly does, so it tells what a request costs wherever it runs.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs
import psutil

from bench.backends import postgres_backends
from bench.servers import Server


def _cpu_seconds(pids: Iterable[int]) -> dict[int, float]:
    seconds = {}
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        seconds[pid] = times.user + times.system
    return seconds


def _server_pids(server: Server) -> list[int]:
    parent = psutil.Process(server.pid)
    return [parent.pid, *(child.pid for child in parent.children(recursive=True))]


def _database_pids(database_url: str | None) -> list[int] | None:
    """PostgreSQL: the backends of this URL's connections. Redis: the server, which other
    users of the same Redis also keep busy. SQLite runs in the server: None."""
    if database_url is None:
        return None
    if database_url.startswith("postgres"):
        return postgres_backends(database_url)
    if database_url.startswith("redis"):
        return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "redis-server"]
    return None


@attrs.frozen
class Snapshot:
    server: dict[int, float]
    database: dict[int, float] | None


@attrs.frozen
class Usage:
    """CPU seconds between two snapshots."""

    server: float
    database: float | None


class CpuMeter:
    """Snapshots of the CPU time of a server's processes and of its database's."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._database_url = server.database_url

    def snapshot(self) -> Snapshot:
        database = _database_pids(self._database_url)
        return Snapshot(
            server=_cpu_seconds(_server_pids(self._server)),
            database=None if database is None else _cpu_seconds(database),
        )

    def since(self, before: Snapshot) -> Usage:
        after = self.snapshot()
        database = None
        if after.database is not None and before.database is not None:
            database = _spent(before.database, after.database)
        return Usage(server=_spent(before.server, after.server), database=database)


def _spent(before: dict[int, float], after: dict[int, float]) -> float:
    # A process that appeared in between spent all of its time in between.
    return sum(seconds - before.get(pid, 0.0) for pid, seconds in after.items())
