"""A small HTTP client for setting up and timing requests: one kept-alive connection, JSON in
and out, HTTP Basic with a token. Old and new servers speak the same API."""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

TIMEOUT_SECONDS = 60


def basic(username: str, password: str = "") -> str:
    """The `Authorization` header of HTTP Basic; a token goes as the username."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


class Api:
    """The taskfarm API at `base` (http://host:port/), as one client sees it."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self._connection: http.client.HTTPConnection | None = None
        self.authorization = ""

    def request(self, method: str, path: str, body: object = None) -> tuple[int, Any]:
        """One request; the status and the decoded JSON answer (None when empty)."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": self.authorization}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        # Servers that close the connection after each answer (gunicorn's sync workers) need
        # a new one; one retry on a fresh connection covers a connection they closed idle.
        for attempt in range(2):
            connection = self._connect()
            try:
                connection.request(method, path, body=payload, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except (http.client.HTTPException, ConnectionError):
                self.close()
                if attempt:
                    raise
                continue
            if response.getheader("connection", "").lower() == "close":
                self.close()
            return response.status, json.loads(data) if data else None
        raise AssertionError("unreachable")

    def timed(self, method: str, path: str, body: object = None) -> float:
        """Seconds one request took, after checking that it succeeded."""
        start = time.perf_counter()
        status, answer = self.request(method, path, body)
        elapsed = time.perf_counter() - start
        if status >= 300:
            raise RuntimeError(f"{method} {path}: HTTP {status} {answer}")
        return elapsed

    def expect(self, status: int, method: str, path: str, body: object = None) -> Any:
        got, answer = self.request(method, path, body)
        if got != status:
            raise RuntimeError(f"{method} {path}: HTTP {got} {answer}, expected {status}")
        return answer

    def log_in(self, username: str, password: str) -> str:
        """Gets a token with the password, and uses it from then on."""
        self.authorization = basic(username, password)
        token: str = self.expect(200, "GET", "/api/token")["token"]
        self.authorization = basic(token)
        return token

    def new_worker(self) -> str:
        worker = uuid.uuid4().hex
        body = {"uuid": worker, "hostname": socket.gethostname(), "pid": os.getpid()}
        self.expect(201, "POST", "/api/worker", body)
        return worker

    def new_run(self, num_tasks: int) -> str:
        run: str = self.expect(201, "POST", "/api/run", {"numTasks": num_tasks})["uuid"]
        return run

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            self._connection = http.client.HTTPConnection(
                self._host, self._port, timeout=TIMEOUT_SECONDS
            )
        return self._connection
