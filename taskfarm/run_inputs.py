"""Where the tasks of each run find their input, for the claims of a process.

What a run's inputs are never changes once it exists, and a run's uuid is never used again:
so a process remembers each run's kind of inputs (and its sweep), and the stored inputs it
read, a chunk of consecutive tasks at a time. Claims go through a run in index order, so one
read of the store serves the next thousand claims, and a claim of a run of inputs costs what
a claim of a plain run costs.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
import attrs
from cachetools import LRUCache

from taskfarm.domain import InputKind, Sweep
from taskfarm.ports import RunStore

#: Runs whose kind of inputs a process remembers: those its workers claim from at once.
REMEMBERED_RUNS = 4096
#: Stored inputs read at once: a chunk of consecutive tasks.
CHUNK = 1000
#: The most bytes of stored inputs (as JSON text) a process remembers.
REMEMBERED_BYTES = 32 * 1024 * 1024
#: Tasks spread over more chunks than this (a page of failed tasks, say) have only their own
#: inputs read, not their chunks'.
CHUNKS_AT_ONCE = 2

_Chunk = tuple[Any, ...]


@attrs.frozen
class _Source:
    """The inputs of one run: none, computed from its sweep, or stored."""

    kind: InputKind | None
    sweep: Sweep | None = None

    @property
    def stored(self) -> bool:
        return self.kind is not None and self.sweep is None


class InputSources:
    """The inputs of tasks, by run."""

    def __init__(self, runs: RunStore) -> None:
        self._runs = runs
        # Read and written from the event loop and from worker threads.
        self._lock = threading.Lock()
        self._sources: LRUCache[str, _Source] = LRUCache(REMEMBERED_RUNS)
        self._chunks: LRUCache[tuple[str, int], tuple[_Chunk, int]] = LRUCache(
            REMEMBERED_BYTES, getsizeof=lambda chunk: chunk[1]
        )

    def inputs(self, run_uuid: str, indices: Sequence[int]) -> list[Any] | None:
        """The inputs of the run's tasks at `indices`; None for a run without inputs. Reads
        the store for what the process does not remember."""
        source = self._source(run_uuid)
        if source.kind is None:
            return None
        if source.sweep is not None:
            return [source.sweep.combination(index) for index in indices]
        if len({index // CHUNK for index in indices}) > CHUNKS_AT_ONCE:
            return _decoded(self._runs.task_inputs(run_uuid, indices))
        return [self._chunk(run_uuid, index // CHUNK)[index % CHUNK] for index in indices]

    async def inputs_on_loop(self, run_uuid: str, indices: Sequence[int]) -> list[Any] | None:
        """`inputs`, from what the process remembers when it can, else from the store in a
        worker thread."""
        remembered = self._remembered(run_uuid, indices)
        if remembered is not None:
            return remembered[0]
        return await anyio.to_thread.run_sync(self.inputs, run_uuid, indices)

    def _remembered(self, run_uuid: str, indices: Sequence[int]) -> tuple[list[Any] | None] | None:
        """`(inputs,)` when the process knows them all without reading the store."""
        with self._lock:
            source = self._sources.get(run_uuid)
            if source is None:
                return None
            chunks = [self._chunks.get((run_uuid, index // CHUNK)) for index in indices]
        if source.kind is None:
            return (None,)
        if source.sweep is not None:
            return ([source.sweep.combination(index) for index in indices],)
        if any(chunk is None for chunk in chunks):
            return None
        return (
            [
                chunk[0][index % CHUNK]
                for chunk, index in zip(chunks, indices, strict=True)
                if chunk
            ],
        )

    def _source(self, run_uuid: str) -> _Source:
        with self._lock:
            source = self._sources.get(run_uuid)
        if source is None:
            kind = self._runs.get_run(run_uuid).inputs
            sweep = self._runs.run_sweep(run_uuid) if kind is InputKind.SWEEP else None
            source = _Source(kind, sweep)
            with self._lock:
                self._sources[run_uuid] = source
        return source

    def _chunk(self, run_uuid: str, number: int) -> _Chunk:
        key = (run_uuid, number)
        with self._lock:
            remembered = self._chunks.get(key)
        if remembered is not None:
            return remembered[0]
        indices = list(range(number * CHUNK, (number + 1) * CHUNK))
        stored = self._runs.task_inputs(run_uuid, indices)
        chunk = tuple(_decoded(stored))
        size = max(sum(len(text) for text in stored if text is not None), 1)
        # A chunk of inputs near the largest allowed is read again each time, not remembered.
        if size <= REMEMBERED_BYTES // 8:
            with self._lock:
                self._chunks[key] = (chunk, size)
        return chunk


def _decoded(stored: Sequence[str | None]) -> list[Any]:
    return [None if text is None else json.loads(text) for text in stored]
