"""The composition root: settings in, wired services out. Nothing else builds adapters."""

from __future__ import annotations

import secrets

import attrs

from taskfarm.accounts import Accounts
from taskfarm.adapters.clock import SystemClock
from taskfarm.adapters.memory import MemoryStorage
from taskfarm.adapters.passwords import Argon2Hasher
from taskfarm.adapters.tokens import JwtSigner
from taskfarm.config import Settings, SettingsError
from taskfarm.domain import Caller, RunPolicy
from taskfarm.guarded import GuardedFarm
from taskfarm.ports import Clock, PasswordHasher, Storage
from taskfarm.service import FarmService
from taskfarm.throughput import ThroughputMeter

SIGNING_KEY_BYTES = 32


@attrs.frozen
class Services:
    """Everything an entry point needs, wired to one store."""

    taskfarm: FarmService
    accounts: Accounts
    storage: Storage
    #: This process's measure of how fast runs go, for the dashboard.
    throughput: ThroughputMeter

    def farm_for(self, caller: Caller) -> GuardedFarm:
        """The farm as `caller` may use it."""
        return GuardedFarm(self.taskfarm, self.accounts.worker_tokens, caller)

    def close(self) -> None:
        self.taskfarm.close()
        self.storage.close()


def open_storage(database_url: str) -> Storage:
    """The store a `DATABASE_URL` names: `sqlite:///…`, `postgresql://…`, `redis://…`,
    `redis+cluster://…` or `memory://`. Drivers are imported only for the store in use."""
    scheme = database_url.partition(":")[0].lower()
    if scheme == "memory":
        return MemoryStorage()
    if scheme.startswith(("sqlite", "postgres")):
        from taskfarm.adapters.sqlalchemy import SqlStorage

        return SqlStorage.from_url(database_url)
    if scheme.startswith("redis"):
        from taskfarm.adapters.redis import RedisStorage

        return RedisStorage.from_url(database_url)
    raise SettingsError(
        f"DATABASE_URL {database_url!r} names no known backend: "
        "use sqlite:///path, postgresql://user@host/db, redis://host:6379/0 or memory://"
    )


def bootstrap(
    settings: Settings,
    *,
    storage: Storage | None = None,
    clock: Clock | None = None,
    hasher: PasswordHasher | None = None,
) -> Services:
    """Wires the services; tests may hand in their own store, clock or (fast) hasher."""
    if storage is not None:
        return _wire(settings, storage, clock or SystemClock(), hasher)
    opened = open_storage(settings.database_url)
    try:
        return _wire(settings, opened, clock or SystemClock(), hasher)
    except BaseException:
        # A database that cannot be used (an old schema, say) must not keep its connections.
        opened.close()
        raise


def _wire(
    settings: Settings, storage: Storage, clock: Clock, hasher: PasswordHasher | None
) -> Services:
    storage.create_schema()
    if settings.secret_key is not None:
        key = settings.secret_key.encode()
    else:
        key = storage.keys.signing_key(lambda: secrets.token_bytes(SIGNING_KEY_BYTES))
    accounts = Accounts.of(
        storage, hasher or Argon2Hasher(), JwtSigner(key), clock, settings.token_lifetime
    )
    taskfarm = FarmService(
        runs=storage.runs,
        workers=storage.workers,
        clock=clock,
        default_policy=RunPolicy(lease_seconds=settings.lease_seconds),
        leave_loop=storage.leave_loop,
    )
    return Services(
        taskfarm=taskfarm,
        accounts=accounts,
        storage=storage,
        throughput=ThroughputMeter(clock),
    )
