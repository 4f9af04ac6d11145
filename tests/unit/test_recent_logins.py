"""Verified logins are trusted briefly, so that HTTP Basic on every request stays cheap."""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.accounts import Accounts
from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.tokens import JwtSigner
from taskfarm.domain import AuthenticationFailed, Caller
from taskfarm.recent import TRUST_SECONDS
from tests.fakes import CountingHasher, FakeClock


@pytest.fixture
def hasher() -> CountingHasher:
    return CountingHasher()


@pytest.fixture
def accounts(clock: FakeClock, hasher: CountingHasher) -> Accounts:
    accounts = Accounts.of(
        MemoryStorage(), hasher, JwtSigner(b"k" * 32), clock, dt.timedelta(days=1)
    )
    accounts.add_user("ada", "engine")
    return accounts


def test_a_verified_password_is_not_checked_again_for_a_while(
    accounts: Accounts, hasher: CountingHasher, clock: FakeClock
) -> None:
    for _ in range(5):
        accounts.authenticate("ada", "engine")
    assert hasher.verifications == 1

    clock.advance(dt.timedelta(seconds=TRUST_SECONDS + 1))
    accounts.authenticate("ada", "engine")
    assert hasher.verifications == 2


def test_a_wrong_password_is_never_trusted(accounts: Accounts, hasher: CountingHasher) -> None:
    accounts.authenticate("ada", "engine")
    for _ in range(3):
        with pytest.raises(AuthenticationFailed):
            accounts.authenticate("ada", "engine!")
    assert hasher.verifications == 4


def test_a_password_change_ends_the_trust_at_once(accounts: Accounts) -> None:
    accounts.authenticate("ada", "engine")
    token = accounts.issue_token(accounts.authenticate("ada", "engine"))
    accounts.authenticate_token(token)

    accounts.change_password("ada", "difference")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("ada", "engine")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_a_deleted_user_is_not_trusted_any_more(accounts: Accounts) -> None:
    token = accounts.issue_token(accounts.authenticate("ada", "engine"))
    accounts.delete_user("ada")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate("ada", "engine")
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_the_memory_holds_no_password(accounts: Accounts) -> None:
    accounts.authenticate("ada", "engine")
    remembered = repr(vars(accounts._recent_logins)["_verified"])
    assert "engine" not in remembered


def test_a_verified_token_is_recalled_without_checking_it_again(
    accounts: Accounts, clock: FakeClock
) -> None:
    token = accounts.issue_token(accounts.authenticate("ada", "engine"))
    assert accounts.recall(token, "") is None  # never verified yet

    user = accounts.authenticate_token(token)

    assert accounts.recall(token, "") == Caller(user)
    clock.advance(dt.timedelta(seconds=TRUST_SECONDS + 1))
    assert accounts.recall(token, "") is None


def test_a_token_is_not_recalled_once_it_expired(accounts: Accounts, clock: FakeClock) -> None:
    token = accounts.issue_token(accounts.authenticate("ada", "engine"))
    # Verified shortly before it expires, so that it expires while still trusted.
    clock.advance(dt.timedelta(days=1) - dt.timedelta(seconds=TRUST_SECONDS / 2))
    accounts.authenticate_token(token)
    assert accounts.recall(token, "") is not None

    clock.advance(dt.timedelta(seconds=TRUST_SECONDS / 2))

    assert accounts.recall(token, "") is None
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)


def test_a_verified_password_is_recalled_and_a_wrong_one_is_not(accounts: Accounts) -> None:
    user = accounts.authenticate("ada", "engine")

    assert accounts.recall("ada", "engine") == Caller(user)
    assert accounts.recall("ada", "engine!") is None
    assert accounts.recall("ada", "") is None


def test_a_password_change_ends_the_recall_of_tokens(accounts: Accounts) -> None:
    token = accounts.issue_token(accounts.authenticate("ada", "engine"))
    accounts.authenticate_token(token)

    accounts.change_password("ada", "difference")

    assert accounts.recall(token, "") is None
    with pytest.raises(AuthenticationFailed):
        accounts.authenticate_token(token)
