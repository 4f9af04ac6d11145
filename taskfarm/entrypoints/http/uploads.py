"""Reading a run's inputs from a request body as it arrives: one line at a time, so that the
memory a body takes is its longest line, whatever its size."""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator

from taskfarm.domain import MAX_INPUT_BYTES, InvalidInput, input_line

#: The content types of a body of inputs, one per line, and of a body of one JSON object.
TEXT_LINES = "text/plain"
NDJSON = "application/x-ndjson"
#: The most bytes a run's inputs may take when uploaded: ten million inputs of 100 bytes.
MAX_UPLOAD_BYTES = 1024 * 1024 * 1024


async def lines(body: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """The inputs of a body of text, one per line with something on it (`input_line`)."""
    number = 0
    async for line in _raw_lines(body):
        number += 1
        try:
            made = input_line(line.decode())
        except UnicodeDecodeError:
            raise InvalidInput(f"line {number} of the inputs is not UTF-8 text") from None
        if made is not None:
            yield made


async def ndjson_values(body: AsyncIterable[bytes]) -> AsyncIterator[object]:
    """The JSON value of each line of a body with something on it (newline-delimited JSON)."""
    number = 0
    async for line in _raw_lines(body):
        number += 1
        if not line.strip():
            continue
        try:
            yield json.loads(line)
        except ValueError:
            raise InvalidInput(f"line {number} of the inputs is not one JSON value") from None


async def _raw_lines(body: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    pending = b""
    async for chunk in body:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line
        # A line longer than any input could be is refused before it fills the memory.
        if len(pending) > MAX_INPUT_BYTES + 2:
            raise InvalidInput(f"an input may take at most {MAX_INPUT_BYTES} bytes")
    if pending:
        yield pending
