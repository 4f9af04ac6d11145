"""Settings, read from the environment once and typed."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping

import attrs

from taskfarm.domain.policy import MAX_LEASE_SECONDS

DEFAULT_DATABASE_URL = "sqlite:///taskfarm.db"
DEFAULT_TOKEN_LIFETIME = dt.timedelta(days=7)
MAX_TOKEN_LIFETIME = dt.timedelta(days=3650)
MAX_LEASE = dt.timedelta(seconds=MAX_LEASE_SECONDS)
#: Shorter keys are refused: an HMAC key must be as hard to guess as the hash is long.
MIN_SECRET_KEY_LENGTH = 32
#: `text` for people reading a terminal, `json` (one object per line) for log shippers.
LOG_FORMATS = ("text", "json")


class SettingsError(ValueError):
    """An environment variable holds a value taskfarm cannot use."""


@attrs.frozen
class Settings:
    """Everything that can be configured, with the defaults a newcomer needs."""

    database_url: str = DEFAULT_DATABASE_URL
    #: Signs tokens. None means: generate one and keep it in the database.
    secret_key: str | None = attrs.field(default=None, repr=False)
    token_lifetime: dt.timedelta = DEFAULT_TOKEN_LIFETIME
    admin_user: str | None = None
    admin_password: str | None = attrs.field(default=None, repr=False)
    #: The lease of runs created without one; None: no lease, tasks stay with their worker.
    lease_seconds: int | None = None
    log_format: str = attrs.field(default="text", validator=attrs.validators.in_(LOG_FORMATS))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        secret_key = env.get("TASKFARM_SECRET_KEY") or None
        if secret_key is not None and len(secret_key) < MIN_SECRET_KEY_LENGTH:
            raise SettingsError(
                f"TASKFARM_SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters; "
                "leave it unset to have taskfarm generate and store one"
            )
        log_format = env.get("TASKFARM_LOG_FORMAT") or "text"
        if log_format not in LOG_FORMATS:
            raise SettingsError(
                f"TASKFARM_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}"
            )
        return cls(
            database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            secret_key=secret_key,
            token_lifetime=_seconds(
                env, "TASKFARM_TOKEN_LIFETIME", DEFAULT_TOKEN_LIFETIME, MAX_TOKEN_LIFETIME
            ),
            admin_user=env.get("TASKFARM_ADMIN_USER") or None,
            admin_password=env.get("TASKFARM_ADMIN_PASSWORD") or None,
            lease_seconds=_lease_seconds(env),
            log_format=log_format,
        )


def _seconds(
    env: Mapping[str, str], name: str, default: dt.timedelta, maximum: dt.timedelta
) -> dt.timedelta:
    raw = env.get(name)
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):
        raise SettingsError(f"{name} must be a whole number of seconds, not {raw!r}")
    seconds = int(raw)
    if not 0 < seconds <= maximum.total_seconds():
        raise SettingsError(
            f"{name} must be between 1 and {int(maximum.total_seconds())} seconds, not {seconds}"
        )
    return dt.timedelta(seconds=seconds)


def _lease_seconds(env: Mapping[str, str]) -> int | None:
    raw = env.get("TASKFARM_LEASE_SECONDS")
    if not raw:
        return None
    lease = _seconds(env, "TASKFARM_LEASE_SECONDS", dt.timedelta(), MAX_LEASE)
    return int(lease.total_seconds())
