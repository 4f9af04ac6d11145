"""Runs, tasks, workers and users in Redis or a Redis Cluster; every change is one Lua script."""

from __future__ import annotations

from taskfarm.adapters.redis.storage import RedisStorage

__all__ = ["RedisStorage"]
