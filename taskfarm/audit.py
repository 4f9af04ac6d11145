"""The audit log: who changed what, and when, one structured line each.

Lines go to the `taskfarm.audit` logger: in text, "audit: alice delete run run=3f2a...";
in JSON (`--log-format json`), with `who`, `action` and each detail as fields of their own.
"""

from __future__ import annotations

import functools
import getpass
import logging
import os
import socket

from taskfarm.domain import Caller

AUDIT_LOGGER = "taskfarm.audit"
logger = logging.getLogger(AUDIT_LOGGER)

AUDIT_FIELD = "audit"


@functools.cache
def operator() -> str:
    """Who changes users: whoever runs `taskfarm user` (or `serve`) on the database, as the
    system knows them. Users are managed there only, never over HTTP."""
    try:
        name = getpass.getuser()
    except (KeyError, OSError):  # a uid without a name, as in some containers
        name = f"uid {os.getuid()}"
    return f"{name}@{socket.gethostname()}"


def record(caller: Caller | str, action: str, **details: object) -> None:
    """Logs that `caller` (or, for a command run on the database, a description of who ran
    it) did `action`."""
    who = caller if isinstance(caller, str) else caller.username
    fields = {"who": who, "action": action, **details}
    if isinstance(caller, Caller) and caller.run is not None:
        fields["token_run"] = caller.run
    text = " ".join(f"{name}={value}" for name, value in details.items())
    logger.info("audit: %s %s %s", who, action, text, extra={AUDIT_FIELD: fields})
