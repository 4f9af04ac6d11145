"""What the client raises: the published client's RuntimeError, with the status kept."""

from __future__ import annotations

import json

import requests


class UnexpectedStatus(RuntimeError):
    """The server answered with a status the call did not expect.

    The message is the published client's, `[HTTP 404]: Content: b'...'`, so that code matching
    on it keeps working; `status` and `detail` say the same for code that wants to act on it.
    """

    def __init__(self, status: int, content: bytes) -> None:
        super().__init__(f"[HTTP {status}]: Content: {content!r}")
        self.status = status
        self.content = content

    @property
    def detail(self) -> str:
        """The server's explanation: its JSON `detail`, or the answer itself."""
        try:
            return str(json.loads(self.content)["detail"])
        except (ValueError, KeyError, TypeError):
            return self.content.decode(errors="replace")


class TaskLost(UnexpectedStatus):
    """409 on a task this worker held: its lease ran out and another worker has it now, so
    this worker must stop working on it. The worker has already let go of it."""


def expect(response: requests.Response, *statuses: int) -> requests.Response:
    """The response, if its status is one of `statuses`; `UnexpectedStatus` otherwise."""
    if response.status_code not in statuses:
        raise UnexpectedStatus(response.status_code, response.content)
    return response
