"""The reference store: the domain's rules executed in plain Python, under one lock."""

from __future__ import annotations

from taskfarm.adapters.memory.storage import MemoryStorage

__all__ = ["MemoryStorage"]
