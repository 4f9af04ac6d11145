"""The client's errors, addresses and retry rules, without a server."""

from __future__ import annotations

import pytest
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError
from urllib3.util.retry import Retry

from taskfarm.client import Retries, TaskLost, UnexpectedStatus
from taskfarm.client.api import Claim, api_base
from taskfarm.client.session import new_session


def test_errors_read_as_the_published_clients_and_keep_the_servers_detail() -> None:
    content = b'{"detail":"no run with uuid \'abc\'"}'
    error = UnexpectedStatus(404, content)
    assert str(error) == """[HTTP 404]: Content: b'{"detail":"no run with uuid \\'abc\\'"}'"""
    assert isinstance(error, RuntimeError)
    assert (error.status, error.detail) == (404, "no run with uuid 'abc'")
    assert UnexpectedStatus(502, b"<html>Bad Gateway</html>").detail == "<html>Bad Gateway</html>"
    assert isinstance(TaskLost(409, b"{}"), UnexpectedStatus)


@pytest.mark.parametrize(
    "url",
    ["http://farm:5000", "http://farm:5000/", "http://farm:5000/api", "http://farm:5000/api/"],
)
def test_the_api_is_found_from_the_servers_address(url: str) -> None:
    assert api_base(url) == "http://farm:5000/api/"


def retry_rules(retries: Retries) -> Retry:
    with new_session("http://farm/api/", retries) as session:
        adapter = session.get_adapter("http://farm/api/runs")
        assert isinstance(adapter, HTTPAdapter)
        return adapter.max_retries


@pytest.mark.parametrize(
    ("method", "status", "retried"),
    [
        ("GET", 503, True),
        ("GET", 502, True),
        ("PUT", 504, True),
        ("GET", 500, False),
        ("GET", 404, False),
        # A POST may have claimed a task: retried only when the server surely did nothing.
        ("POST", 503, True),
        # A full database wrote nothing either; room may be made meanwhile.
        ("POST", 507, True),
        ("PUT", 507, True),
        ("POST", 502, False),
        ("POST", 504, False),
    ],
)
def test_answers_are_retried_only_when_the_request_can_safely_be_sent_again(
    method: str, status: int, retried: bool
) -> None:
    assert retry_rules(Retries()).is_retry(method, status) is retried


def test_retries_back_off_exponentially_up_to_a_ceiling() -> None:
    retry = retry_rules(Retries(attempts=8, backoff=1, backoff_max=10))
    waits = []
    for _ in range(6):
        retry = retry.increment("POST", "http://farm/api/run", error=ConnectTimeoutError())
        waits.append(retry.get_backoff_time())
    assert waits == [0, 2, 4, 8, 10, 10]


def test_a_claim_reads_the_servers_task() -> None:
    body = {"id": 4, "task": 4, "percentCompleted": 12.5, "status": "computing", "attempts": 2}
    assert Claim.from_json(body) == Claim(task=4, percent_completed=12.5, attempts=2)
