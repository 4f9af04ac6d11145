"""Logging in with a token that is renewed when it expires."""

from __future__ import annotations

import threading
from typing import Any

import requests
from requests.auth import AuthBase, HTTPBasicAuth


class TokenAuth(AuthBase):
    """Sends a token from `GET /api/token` as the username with an empty password, as the
    server asks. Tokens expire (after 7 days by default): on a 401 this gets a new one with the
    password and sends the request again, so that a worker outliving its token carries on."""

    def __init__(self, token_url: str, username: str, password: str, token: str) -> None:
        self.token_url = token_url
        self.token = token
        self._username = username
        self._password = password
        self._lock = threading.Lock()

    def copy(self) -> TokenAuth:
        return TokenAuth(self.token_url, self._username, self._password, self.token)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            token = self.token
        request = HTTPBasicAuth(token, "")(request)
        request.hooks["response"].append(self._renew_on_401)
        return request

    def _renew_on_401(self, response: requests.Response, **send: Any) -> requests.Response:
        if response.status_code != 401 or response.request.url == self.token_url:
            return response
        adapter = response.connection
        renewal = requests.Request(
            "GET", self.token_url, auth=HTTPBasicAuth(self._username, self._password)
        ).prepare()
        answer = adapter.send(renewal, **send)
        if answer.status_code != 200:
            # The password no longer works either: the caller sees the first refusal.
            answer.close()
            return response
        with self._lock:
            self.token = answer.json()["token"]
        response.close()
        again = response.request.copy()
        again.hooks = {"response": []}
        again = HTTPBasicAuth(self.token, "")(again)
        retried = adapter.send(again, **send)
        retried.history.append(response)
        retried.request = again
        return retried
