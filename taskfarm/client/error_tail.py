"""The end of a long error output: what the server keeps of it for a task that failed."""

from __future__ import annotations

import collections
import threading

#: The most of a command's error output the server keeps per task (its API's limit on a task
#: update's `error`): the last lines that fit.
MAX_ERROR_BYTES = 4096


class ErrorTail:
    """The last lines a command wrote to its error output, as many as the server keeps."""

    def __init__(self, limit: int = MAX_ERROR_BYTES) -> None:
        self._limit = limit
        self._lines: collections.deque[bytes] = collections.deque()
        self._size = 0
        self._lock = threading.Lock()

    def add(self, line: bytes) -> None:
        with self._lock:
            self._lines.append(line)
            self._size += len(line)
            while self._size > self._limit and len(self._lines) > 1:
                self._size -= len(self._lines.popleft())

    def text(self) -> str:
        """The tail as text: undecodable bytes replaced, NULs dropped (the server refuses
        them), its start cut to fit the limit once encoded."""
        with self._lock:
            data = b"".join(self._lines)
        text = data.decode("utf-8", "replace").replace("\x00", "")
        encoded = text.encode()
        if len(encoded) <= self._limit:
            return text
        # Cut at a character's start: continuation bytes of UTF-8 are 0b10xxxxxx.
        start = len(encoded) - self._limit
        while encoded[start] & 0xC0 == 0x80:
            start += 1
        return encoded[start:].decode()
