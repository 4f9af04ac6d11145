"""The real Argon2 hasher: slow on purpose, so tested once and otherwise faked."""

from __future__ import annotations

import pytest

from taskfarm.adapters.passwords import Argon2Hasher


@pytest.fixture(scope="module")
def hasher() -> Argon2Hasher:
    return Argon2Hasher()


@pytest.fixture(scope="module")
def secret_hash(hasher: Argon2Hasher) -> str:
    return hasher.hash("correct horse")


def test_argon2_hash_verifies_the_right_password_only(
    hasher: Argon2Hasher, secret_hash: str
) -> None:
    assert secret_hash.startswith("$argon2id$")
    assert "correct horse" not in secret_hash
    assert hasher.verify(secret_hash, "correct horse")
    assert not hasher.verify(secret_hash, "correct horse ")


def test_argon2_salts_every_hash(hasher: Argon2Hasher, secret_hash: str) -> None:
    assert hasher.hash("correct horse") != secret_hash


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$zzz",
        "$5$rounds=5000$salt$hash",
        "$argon2id$é",
    ],
)
def test_argon2_garbage_hash_does_not_verify(hasher: Argon2Hasher, garbage: str) -> None:
    assert hasher.verify(garbage, "correct horse") is False


def test_argon2_password_that_cannot_be_encoded_does_not_verify(
    hasher: Argon2Hasher, secret_hash: str
) -> None:
    # The port promises False, never an exception, for any password that does not match.
    assert hasher.verify(secret_hash, "correct\ud800horse") is False
