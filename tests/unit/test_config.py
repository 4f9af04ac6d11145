"""Settings from the environment."""

from __future__ import annotations

import datetime as dt

import pytest

from taskfarm.adapters.memory import MemoryStorage
from taskfarm.bootstrap import bootstrap
from taskfarm.config import Settings, SettingsError
from taskfarm.domain import RunPolicy
from tests.fakes import FakeClock, FakeHasher


def test_empty_environment_gives_the_defaults_a_newcomer_needs() -> None:
    settings = Settings.from_env({})

    assert settings == Settings(
        database_url="sqlite:///taskfarm.db",
        secret_key=None,
        token_lifetime=dt.timedelta(days=7),
        admin_user=None,
        admin_password=None,
        lease_seconds=None,
    )


def test_empty_variables_count_as_unset() -> None:
    names = ["DATABASE_URL", "TASKFARM_SECRET_KEY", "TASKFARM_TOKEN_LIFETIME"]
    names += ["TASKFARM_ADMIN_USER", "TASKFARM_ADMIN_PASSWORD", "TASKFARM_LEASE_SECONDS"]

    assert Settings.from_env(dict.fromkeys(names, "")) == Settings.from_env({})


def test_every_variable_is_read() -> None:
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://tf@db/tf",
            "TASKFARM_SECRET_KEY": "k" * 32,
            "TASKFARM_TOKEN_LIFETIME": "3600",
            "TASKFARM_ADMIN_USER": "admin",
            "TASKFARM_ADMIN_PASSWORD": "pw",
            "TASKFARM_LEASE_SECONDS": "300",
        }
    )

    assert settings == Settings(
        database_url="postgresql://tf@db/tf",
        secret_key="k" * 32,
        token_lifetime=dt.timedelta(hours=1),
        admin_user="admin",
        admin_password="pw",
        lease_seconds=300,
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


@pytest.mark.parametrize(("raw", "seconds"), [("1", 1), ("30", 30), ("604800", 604800)])
def test_default_lease_is_read_in_whole_seconds_up_to_a_week(raw: str, seconds: int) -> None:
    assert Settings.from_env({"TASKFARM_LEASE_SECONDS": raw}).lease_seconds == seconds


def test_without_a_default_lease_runs_lease_nothing_unless_they_say_so() -> None:
    assert Settings.from_env({}).lease_seconds is None
    assert Settings.from_env({"TASKFARM_LEASE_SECONDS": ""}).lease_seconds is None


@pytest.mark.parametrize(
    "raw", ["abc", "1.5", "30s", "0x10", " 30", "0", "-5", "604801", str(10**20), "\uff13\uff10"]
)
def test_default_lease_that_is_not_a_whole_number_of_seconds_up_to_a_week_is_refused(
    raw: str,
) -> None:
    with pytest.raises(SettingsError, match="TASKFARM_LEASE_SECONDS"):
        Settings.from_env({"TASKFARM_LEASE_SECONDS": raw})


def test_default_lease_of_the_settings_applies_to_runs_created_without_one() -> None:
    services = bootstrap(
        Settings(database_url="memory://", secret_key="k" * 32, lease_seconds=45),
        storage=MemoryStorage(),
        clock=FakeClock(),
        hasher=FakeHasher(),
    )

    assert services.taskfarm.create_run(3).policy == RunPolicy(lease_seconds=45)
    assert services.taskfarm.create_run(3, lease_seconds=5).policy == RunPolicy(lease_seconds=5)
