"""The Lua scripts beside this file, each registered once per client and called by SHA.

redis-py's `Script` sends `EVALSHA` and, when the server answers `NOSCRIPT` (after a restart or
a failover), loads the script and retries: the reloading the protocol asks for.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import attrs

#: The scripts that change a run's tasks; they start with the task codec, one copy for all.
_RUN_SCRIPTS = ("claim", "update", "change", "restart", "retry", "expire")
#: Those that apply `Task.changed`; they start with its rule, after the codec.
_CHANGE_SCRIPTS = ("update", "change")
#: Those the synchronous client calls: claims go through the asyncio one (`LoopClaims`).
_SYNC_SCRIPTS = (
    "update",
    "change",
    "restart",
    "retry",
    "expire",
    "create_run",
    "release_name",
    "register_worker",
    "seen_worker",
    "add_user",
    "delete_user",
    "set_password",
    "add_token",
    "revoke_token",
    "count_failed_login",
)
_CODEC = "task_codec"
_CHANGE = "task_change"


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"{name}.lua").read_text()


@attrs.frozen
class Scripts:
    """The scripts of the synchronous client."""

    update: Any
    change: Any
    restart: Any
    retry: Any
    expire: Any
    create_run: Any
    release_name: Any
    register_worker: Any
    seen_worker: Any
    add_user: Any
    delete_user: Any
    set_password: Any
    add_token: Any
    revoke_token: Any
    count_failed_login: Any

    @classmethod
    def register(cls, client: Any) -> Scripts:
        return cls(**{name: client.register_script(source(name)) for name in _SYNC_SCRIPTS})


def source(name: str) -> str:
    """The Lua source of a script, with the task codec before it if it changes tasks, and the
    rule of `Task.changed` after that if it applies it."""
    preludes = [_CODEC] if name in _RUN_SCRIPTS else []
    if name in _CHANGE_SCRIPTS:
        preludes.append(_CHANGE)
    return "".join(_source(each) for each in [*preludes, name])
