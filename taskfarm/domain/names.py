"""Run names: what people call a run instead of its uuid, wherever a uuid is asked for."""

from __future__ import annotations

import re

from taskfarm.domain.errors import Conflict, InvalidInput

MAX_NAME_LENGTH = 64

#: What a name is, and what it may not look like: the uuids the server hands out (32 hex
#: digits) and those of the original server, with dashes. So a uuid never has to be looked up
#: as a name. Regular expressions both Python and JSON Schema (the API's) read alike.
NAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{0,{MAX_NAME_LENGTH - 1}}}$"
UUID_PATTERN = r"^([0-9a-fA-F]{32}|[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12})$"

_NAME, _UUID = re.compile(NAME_PATTERN), re.compile(UUID_PATTERN)


def check_run_name(name: object) -> str:
    """A run's name: a word a shell and a URL take as it is, and no uuid."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInput(
            f"a run name has 1 to {MAX_NAME_LENGTH} letters, digits, '.', '_' or '-' and "
            f"starts with a letter or digit, not {name!r}"
        )
    if looks_like_uuid(name):
        raise InvalidInput(f"a run name may not look like a uuid, as {name!r} does")
    return name


def looks_like_uuid(reference: str) -> bool:
    return _UUID.fullmatch(reference) is not None


def may_be_name(reference: str) -> bool:
    """Whether a run's uuid or name, as a URL or a command line gives it, may be a name."""
    return _NAME.fullmatch(reference) is not None and not looks_like_uuid(reference)


def name_taken(name: str) -> Conflict:
    return Conflict(f"there is already a run called {name!r}: choose another name")
