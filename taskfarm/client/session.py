"""HTTP sessions that ride out a server restart: retries with exponential backoff, and a
default timeout so that no request hangs for ever."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import attrs
import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

#: Seconds to wait for a connection, then for an answer.
TIMEOUT = (10.0, 60.0)

#: Gateways answer these while the server behind them restarts; ours answers 503 while its
#: database is away, and 507 while it is full. Only requests that change nothing, or change
#: the same thing again, are retried on them, except on 503 and 507 (see `_Retry`).
RETRY_STATUSES = frozenset({502, 503, 504, 507})
#: Answers of this server that say it wrote nothing: a POST is safe to send again.
_NOTHING_WRITTEN = frozenset({503, 507})


@attrs.frozen
class Retries:
    """How hard a client tries before it gives up on a request: up to `attempts` retries,
    `backoff` seconds after the second failure, then twice as long each time, never more than
    `backoff_max`. The defaults wait about two and a half minutes in all, enough for a server
    restart or a database failover."""

    attempts: int = attrs.field(default=10, validator=attrs.validators.ge(0))
    backoff: float = attrs.field(default=0.5, validator=attrs.validators.ge(0))
    backoff_max: float = attrs.field(default=30.0, validator=attrs.validators.ge(0))


DEFAULT_RETRIES = Retries()


class _Retry(Retry):
    """urllib3's retries, which retry a POST only when the server surely did not act on it.

    Connection errors happen before a request is sent, so every method is retried on them;
    a 503 or a 507 from this server means its database refused the request, so a POST is
    retried on them too. A POST that timed out or lost its connection is not: the server may
    have claimed a task for it, and claiming again would take a second one.
    """

    def __init__(self, *args: Any, budget: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        #: The retries there were to begin with, to say how many were used.
        self.budget = budget if budget is not None else int(self.total or 0)

    def new(self, **kwargs: Any) -> _Retry:
        return super().new(budget=self.budget, **kwargs)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        if status_code in _NOTHING_WRITTEN:
            return True
        return super().is_retry(method, status_code, has_retry_after)

    def increment(self, *args: Any, **kwargs: Any) -> _Retry:
        """The next retry, said on the log: a worker riding out an outage says so."""
        retry = super().increment(*args, **kwargs)
        response, error = kwargs.get("response"), kwargs.get("error")
        reason = f"HTTP {response.status}" if response is not None else type(error).__name__
        used = self.budget - int(retry.total or 0)
        logger.warning("server unreachable (%s), retrying (%d/%d)", reason, used, self.budget)
        return retry


class _Adapter(HTTPAdapter):
    """The transport, with a timeout for the requests that give none."""

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: bytes | str | tuple[bytes | str, bytes | str] | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        return super().send(
            request,
            stream=stream,
            timeout=TIMEOUT if timeout is None else timeout,
            verify=verify,
            cert=cert,
            proxies=proxies,
        )


def new_session(base_url: str, retries: Retries) -> requests.Session:
    """A session that retries the requests it sends under `base_url` as `retries` says."""
    retry = _Retry(
        total=retries.attempts,
        connect=retries.attempts,
        read=retries.attempts,
        status=retries.attempts,
        # Errors neither of connecting nor of reading (TLS, mostly) are not worth retrying.
        other=0,
        redirect=0,
        status_forcelist=RETRY_STATUSES,
        backoff_factor=retries.backoff,
        backoff_max=retries.backoff_max,
        # After the last retry the caller gets the answer itself, and raises its own error.
        raise_on_status=False,
    )
    session = requests.Session()
    session.mount(base_url, _Adapter(max_retries=retry))
    # The environment's proxies and CA bundle, read once: requests would read them again for
    # every request, which costs a worker of short tasks a tenth of its time.
    found = session.merge_environment_settings(base_url, {}, None, None, None)
    session.proxies.update(found["proxies"])
    session.verify, session.cert = found["verify"], found["cert"]
    session.trust_env = False
    return session
