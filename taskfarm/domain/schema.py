"""The versions of a database's schema, as upgrading one reports them."""

from __future__ import annotations

import attrs


@attrs.frozen
class SchemaVersion:
    """One version of the schema: its revision and what it brought."""

    revision: str
    description: str

    def __str__(self) -> str:
        return f"{self.revision} ({self.description})"


@attrs.frozen
class SchemaUpgrade:
    """What upgrading a database did: from the version it found (None for an empty database)
    to the current one, the same when it was up to date."""

    found: SchemaVersion | None
    current: SchemaVersion

    @property
    def changed(self) -> bool:
        return self.found != self.current
