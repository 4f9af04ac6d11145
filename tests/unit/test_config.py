"""Settings from the environment."""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.config import Settings, SettingsError


def test_empty_environment_gives_the_defaults_a_newcomer_needs() -> None:
    settings = Settings.from_env({})

    assert settings == Settings(
        database_url="sqlite:///taskfarm.db",
        secret_key=None,
        token_lifetime=dt.timedelta(days=7),
        admin_user=None,
        admin_password=None,
    )


def test_empty_variables_count_as_unset() -> None:
    names = ["DATABASE_URL", "TASKFARM_SECRET_KEY", "TASKFARM_TOKEN_LIFETIME"]
    names += ["TASKFARM_ADMIN_USER", "TASKFARM_ADMIN_PASSWORD"]

    assert Settings.from_env(dict.fromkeys(names, "")) == Settings.from_env({})


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://tf@db/tf",
            "TASKFARM_SECRET_KEY": "k" * 32,
            "TASKFARM_TOKEN_LIFETIME": "3600",
            "TASKFARM_ADMIN_USER": "admin",
            "TASKFARM_ADMIN_PASSWORD": "pw",
        }
    )

    assert settings == Settings(
        database_url="postgresql://tf@db/tf",
        secret_key="k" * 32,
        token_lifetime=dt.timedelta(hours=1),
        admin_user="admin",
        admin_password="pw",
    )


def test_secret_key_stays_out_of_the_repr() -> None:
    settings = Settings.from_env({"TASKFARM_SECRET_KEY": "s3cr3t" * 6})

    assert "s3cr3t" not in repr(settings)


@pytest.mark.parametrize("key", ["x", "k" * 31])
def test_secret_key_shorter_than_32_characters_is_refused(key: str) -> None:
    with pytest.raises(SettingsError, match="TASKFARM_SECRET_KEY"):
        Settings.from_env({"TASKFARM_SECRET_KEY": key})


@pytest.mark.parametrize(("raw", "seconds"), [("1", 1), ("60", 60), ("604800", 604800)])
def test_token_lifetime_is_read_in_seconds(raw: str, seconds: int) -> None:
    lifetime = Settings.from_env({"TASKFARM_TOKEN_LIFETIME": raw}).token_lifetime

    assert lifetime == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("raw", ["abc", "1.5", "1e3", "7d", "0x10", "0", "-5"])
def test_token_lifetime_that_is_not_a_positive_whole_number_is_refused(raw: str) -> None:
    with pytest.raises(SettingsError, match="TASKFARM_TOKEN_LIFETIME"):
        Settings.from_env({"TASKFARM_TOKEN_LIFETIME": raw})


@pytest.mark.parametrize("raw", [str(10**13), str(10**20)])
def test_token_lifetime_past_the_last_representable_date_is_refused(raw: str) -> None:
    # Such a lifetime either overflows a timedelta here or every token's expiry later.
    with pytest.raises(SettingsError, match="TASKFARM_TOKEN_LIFETIME"):
        Settings.from_env({"TASKFARM_TOKEN_LIFETIME": raw})
