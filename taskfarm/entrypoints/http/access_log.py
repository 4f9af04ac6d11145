"""One line per request: method, route, status and time, written by the process that served it.

The lines do not go through `logging`: a log record for every request, made, filtered,
formatted and written line by line, cost a claim request more than a tenth of its CPU. They
are formatted as the configured formatter writes `taskfarm.access` records, and the lines of
the requests answered in one turn of the event loop are written together at its end.
"""

from __future__ import annotations

import asyncio
import select
import sys
import time
from collections.abc import Iterator, Sequence
from typing import TextIO

from taskfarm.entrypoints.http.observe import Answered
from taskfarm.entrypoints.logs import FORMATTERS, TextFormatter

#: A write to a pipe of at most this many bytes lands whole, never interleaved with the
#: writes of the other server processes sharing stderr; the lines are ASCII, a byte a
#: character.
ATOMIC_WRITE = select.PIPE_BUF


class AccessLog:
    """Logs each request once it is answered (or failed, as a 500), as an observer of
    `ObserveRequests` on one event loop.

    The route is the path template (`/api/runs/{uuid}`), so that lines group by operation and
    carry no identifiers; the raw path when no route took the request.
    """

    def __init__(self, formatter: TextFormatter, stream: TextIO | None = None) -> None:
        self._formatter = formatter
        #: None is whatever `sys.stderr` is when the lines are written.
        self._stream = stream
        self._pending: list[str] = []

    @classmethod
    def to_stderr(cls, log_format: str) -> AccessLog:
        """The access log of a server process: to stderr, in `text` or `json`."""
        return cls(FORMATTERS[log_format]())

    def __call__(self, answered: Answered) -> None:
        route = answered.path if answered.route is None else answered.route
        line = self._formatter.access_line(
            time.time(),
            answered.method,
            route,
            answered.status,
            round(answered.seconds * 1000, 2),
        )
        if not self._pending:
            try:
                asyncio.get_running_loop().call_soon(self._write_pending)
            except RuntimeError:
                # No event loop: nothing would write it later.
                self._write([line])
                return
        self._pending.append(line)

    def _write_pending(self) -> None:
        lines, self._pending = self._pending, []
        self._write(lines)

    def _write(self, lines: Sequence[str]) -> None:
        """Writes the lines in writes that each land whole."""
        stream = sys.stderr if self._stream is None else self._stream
        for chunk in _chunks(lines, ATOMIC_WRITE):
            stream.write(chunk)
            stream.flush()


def _chunks(lines: Sequence[str], most: int) -> Iterator[str]:
    """The lines, in order, joined into strings of at most `most` characters (or of one
    longer line alone)."""
    start, size = 0, 0
    for end, line in enumerate(lines):
        if end > start and size + len(line) > most:
            yield "".join(lines[start:end])
            start, size = end, 0
        size += len(line)
    if start < len(lines):
        yield "".join(lines[start:])
