"""What workers say about themselves, and the names and passwords of users."""

from __future__ import annotations

import pytest
from hypothesis import given

from taskfarm.domain import InvalidInput, WorkerRegistration, check_password, check_username
from tests import strategies


@given(registration=strategies.registrations())
def test_registration_from_valid_fields_keeps_them(registration: WorkerRegistration) -> None:
    parsed = WorkerRegistration.from_fields(
        registration.uuid, registration.hostname, registration.pid
    )

    assert parsed == registration


@pytest.mark.parametrize(
    ("uuid", "hostname", "pid"),
    [("u" * 64, "h" * 255, 2**63 - 1), ("u", "", 0)],
)
def test_registration_at_the_limits_is_accepted(uuid: str, hostname: str, pid: int) -> None:
    assert WorkerRegistration.from_fields(uuid, hostname, pid).pid == pid


def test_pid_written_with_a_decimal_point_is_the_whole_number() -> None:
    assert WorkerRegistration.from_fields("u", "host", 42.0) == WorkerRegistration("u", "host", 42)


@pytest.mark.parametrize(
    ("uuid", "hostname", "pid", "field"),
    [
        ("", "host", 1, "uuid"),
        ("u" * 65, "host", 1, "uuid"),
        (None, "host", 1, "uuid"),
        (42, "host", 1, "uuid"),
        ("u", "h" * 256, 1, "hostname"),
        ("u", None, 1, "hostname"),
        ("u", "host", -1, "pid"),
        ("u", "host", 2**63, "pid"),
        ("u", "host", True, "pid"),
        ("u", "host", 1.5, "pid"),
        ("nul\x00", "host", 1, "uuid"),
        ("u", "host\x00", 1, "hostname"),
        ("u", "host", "1", "pid"),
    ],
)
def test_registration_with_a_bad_field_is_refused(
    uuid: object, hostname: object, pid: object, field: str
) -> None:
    with pytest.raises(InvalidInput, match=field):
        WorkerRegistration.from_fields(uuid, hostname, pid)


@pytest.mark.parametrize("username", ["a", "alice", "Zoë", "a b", "x" * 64, "user@example.org"])
def test_username_of_printable_characters_without_a_colon_is_accepted(username: str) -> None:
    assert check_username(username) == username


@pytest.mark.parametrize("username", ["", "x" * 65, "a:b", ":", "tab\there", "new\nline", "\x00"])
def test_username_that_http_basic_cannot_carry_is_refused(username: str) -> None:
    with pytest.raises(InvalidInput, match="without a colon"):
        check_username(username)


@pytest.mark.parametrize("password", ["p", "with:colon and spaces", "ünïcödé", "x" * 1024])
def test_password_of_1_to_1024_characters_is_accepted(password: str) -> None:
    assert check_password(password) == password


@pytest.mark.parametrize("password", ["", "x" * 1025])
def test_password_that_is_empty_or_too_long_is_refused(password: str) -> None:
    with pytest.raises(InvalidInput, match="1 to 1024"):
        check_password(password)


def test_password_that_cannot_be_encoded_is_refused() -> None:
    # A lone surrogate reaches Python from JSON escapes or from undecodable command-line
    # bytes; no hasher can encode it, so it must be refused before one is asked to.
    with pytest.raises(InvalidInput):
        check_password("pass\ud800word")
