"""The use cases of users, passwords and tokens (`Accounts`), on the memory store."""

from __future__ import annotations

import base64
import datetime as dt
import json

import jwt
import pytest

from taskfarm.accounts import Accounts
from taskfarm.adapters.tokens import JwtSigner
from taskfarm.domain import (
    AuthenticationFailed,
    Conflict,
    InvalidInput,
    TokenClaims,
    User,
    UserNotFound,
)
from tests.fakes import FakeClock
from tests.unit.conftest import TOKEN_LIFETIME

# Users and passwords


@pytest.mark.parametrize("username", ["", "a:b", "x" * 65, "tab\there"])
def test_user_with_an_invalid_name_is_refused(accounts: Accounts, username: str) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user(username, "secret")

    assert not accounts.has_users()


def test_user_with_an_empty_password_is_refused(accounts: Accounts) -> None:
    with pytest.raises(InvalidInput):
        accounts.add_user("alice", "")


def test_second_user_of_the_same_name_is_a_conflict(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    with pytest.raises(Conflict):
        accounts.add_user("alice", "other")

    assert accounts.authenticate("alice", "secret").username == "alice"


def test_users_are_listed_and_stored_without_their_password(accounts: Accounts) -> None:
    alice = accounts.add_user("alice", "secret")
    bob = accounts.add_user("bob", "hunter2")

    assert accounts.list_users() == [alice, bob]
    assert "secret" not in alice.password_hash
    assert alice.token_stamp != bob.token_stamp


def test_right_password_authenticates_the_user(accounts: Accounts) -> None:
    alice = accounts.add_user("alice", "secret")

    assert accounts.authenticate("alice", "secret") == alice


@pytest.mark.parametrize(
    ("username", "password"), [("alice", "wrong"), ("alice", ""), ("bob", "secret"), ("", "secret")]
)
def test_wrong_password_or_unknown_user_fails_alike(
    accounts: Accounts, username: str, password: str
) -> None:
    accounts.add_user("alice", "secret")

    with pytest.raises(AuthenticationFailed, match="wrong username or password"):
        accounts.authenticate(username, password)


def test_changed_password_replaces_the_old_one(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    accounts.change_password("alice", "new secret")

    assert accounts.authenticate("alice", "new secret").username == "alice"
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "secret")


def test_password_of_an_unknown_user_cannot_be_changed(accounts: Accounts) -> None:
    with pytest.raises(UserNotFound):
        accounts.change_password("nobody", "secret")


def test_deleted_user_cannot_authenticate(accounts: Accounts) -> None:
    accounts.add_user("alice", "secret")

    accounts.delete_user("alice")

    assert not accounts.has_users()
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("alice", "secret")
    with pytest.raises(UserNotFound):
        accounts.delete_user("alice")


# Tokens


@pytest.fixture
def alice(accounts: Accounts) -> User:
    return accounts.add_user("alice", "secret")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _json_b64(value: object) -> str:
    return _b64(json.dumps(value).encode())


def _payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


def test_issued_token_authenticates_its_user(accounts: Accounts, alice: User) -> None:
    token = accounts.issue_token(alice)

    assert accounts.authenticate_token(token) == alice


def test_token_is_accepted_until_just_before_its_lifetime_ends(
    accounts: Accounts, alice: User, clock: FakeClock
) -> None:
    token = accounts.issue_token(alice)

    clock.advance(TOKEN_LIFETIME - dt.timedelta(seconds=1))

    assert accounts.authenticate_token(token) == alice


@pytest.mark.parametrize("past", [dt.timedelta(0), dt.timedelta(seconds=1), dt.timedelta(days=30)])
def test_token_expires_when_the_clock_reaches_the_end_of_its_lifetime(
    accounts: Accounts, alice: User, clock: FakeClock, past: dt.timedelta
) -> None:
    token = accounts.issue_token(alice)

    clock.advance(TOKEN_LIFETIME + past)

    with pytest.raises(AuthenticationFailed, match="expired"):
        accounts.authenticate_token(token)


def test_token_dies_when_the_password_changes(accounts: Accounts, alice: User) -> None:
    old_token = accounts.issue_token(alice)

    accounts.change_password("alice", "new secret")

    with pytest.raises(AuthenticationFailed, match="revoked"):
        accounts.authenticate_token(old_token)
    new_token = accounts.issue_token(accounts.authenticate("alice", "new secret"))
    assert accounts.authenticate_token(new_token).username == "alice"


def test_token_dies_with_its_user_even_when_the_name_is_taken_again(
    accounts: Accounts, alice: User
) -> None:
    token = accounts.issue_token(alice)

    accounts.delete_user("alice")
    with pytest.raises(AuthenticationFailed, match="no longer exists"):
        accounts.authenticate_token(token)

    accounts.add_user("alice", "secret")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_token_signed_with_another_key_is_refused(
    accounts: Accounts, alice: User, clock: FakeClock
) -> None:
    forged = JwtSigner(b"another key, of thirty-two bytes").issue(
        TokenClaims("alice", alice.token_stamp, clock.now() + TOKEN_LIFETIME)
    )

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(forged)


def test_token_whose_claims_were_altered_is_refused(accounts: Accounts, alice: User) -> None:
    header, _, signature = accounts.issue_token(alice).split(".")
    bob = accounts.add_user("bob", "hunter2")
    claims = {"sub": "bob", "stamp": bob.token_stamp, "exp": 2**40}

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(f"{header}.{_json_b64(claims)}.{signature}")


def test_token_whose_signature_was_altered_is_refused(accounts: Accounts, alice: User) -> None:
    header, payload, signature = accounts.issue_token(alice).split(".")
    # The first character carries six bits of the signature, unlike the last.
    altered = ("B" if signature[0] == "A" else "A") + signature[1:]

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(f"{header}.{payload}.{altered}")


def test_unsigned_alg_none_token_is_refused(accounts: Accounts, alice: User) -> None:
    claims = _payload(accounts.issue_token(alice))
    unsigned = f"{_json_b64({'alg': 'none', 'typ': 'JWT'})}.{_json_b64(claims)}."

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(unsigned)


def test_token_signed_with_another_algorithm_is_refused(
    accounts: Accounts, alice: User, signing_key: bytes, clock: FakeClock
) -> None:
    claims = {"sub": "alice", "stamp": alice.token_stamp, "exp": clock.now() + TOKEN_LIFETIME}
    token = jwt.encode(claims, signing_key, algorithm="HS512")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_token_without_expiry_is_refused(
    accounts: Accounts, alice: User, signing_key: bytes
) -> None:
    token = jwt.encode({"sub": "alice", "stamp": alice.token_stamp}, signing_key, algorithm="HS256")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_oversized_token_is_refused_even_when_properly_signed(
    accounts: Accounts, alice: User, signing_key: bytes, clock: FakeClock
) -> None:
    expires = clock.now() + TOKEN_LIFETIME
    claims = {"sub": "alice", "stamp": alice.token_stamp, "exp": expires, "padding": "x" * 1024}
    token = jwt.encode(claims, signing_key, algorithm="HS256")

    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "..", "é.é.é"])
def test_garbage_token_is_refused(accounts: Accounts, alice: User, token: str) -> None:
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)
