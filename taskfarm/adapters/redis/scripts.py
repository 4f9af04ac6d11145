"""The Lua scripts, each registered once per client and called by SHA.

redis-py's `Script` sends `EVALSHA` and, when the server answers `NOSCRIPT` (after a restart or
a failover), loads the script and retries: the reloading the protocol asks for.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

import attrs

_NAMES = (
    "claim",
    "update",
    "restart",
    "register_worker",
    "add_user",
    "delete_user",
    "set_password",
)


def _source(name: str) -> str:
    return resources.files(__package__).joinpath(f"scripts/{name}.lua").read_text()


@attrs.frozen
class Scripts:
    claim: Any
    update: Any
    restart: Any
    register_worker: Any
    add_user: Any
    delete_user: Any
    set_password: Any

    @classmethod
    def register(cls, client: Any) -> Scripts:
        return cls(**{name: client.register_script(_source(name)) for name in _NAMES})
