"""Databases made before there were migrations: which revision their tables are at.

Such a database has the tables, made by `metadata.create_all`, but no `alembic_version` to
say which schema they follow; their columns tell.
"""

from __future__ import annotations

import sqlalchemy as sa

from taskfarm.domain import SchemaMismatch

#: The columns of each table, for each revision that a taskfarm without migrations made.
_COLUMNS_AT = {
    "0001": {
        "runs": {
            "id",
            "uuid",
            "num_tasks",
            "frontier",
            "num_computing",
            "num_done",
            "progress",
            "created_at",
        },
        "tasks": {"run_id", "idx", "state", "progress", "worker_uuid", "updated_at"},
        "workers": {"id", "uuid", "hostname", "pid", "started"},
        "users": {"id", "username", "password_hash", "token_stamp"},
        "settings": {"name", "value"},
    },
    "0002": {
        "runs": {
            "id",
            "uuid",
            "num_tasks",
            "lease_seconds",
            "max_attempts",
            "frontier",
            "num_computing",
            "num_done",
            "num_failed",
            "progress",
            "created_at",
        },
        "tasks": {
            "run_id",
            "idx",
            "state",
            "progress",
            "worker_uuid",
            "attempts",
            "lease_expires",
            "updated_at",
        },
        "workers": {"id", "uuid", "hostname", "pid", "started", "last_seen"},
        "users": {"id", "username", "password_hash", "token_stamp"},
        "settings": {"name", "value"},
    },
}
_TABLES = frozenset(_COLUMNS_AT["0001"])


def unversioned_revision(connection: sa.Connection) -> str | None:
    """The revision whose tables the database has; None when it has none of taskfarm's
    tables. Raises SchemaMismatch for tables that no taskfarm made."""
    inspector = sa.inspect(connection)
    present = _TABLES.intersection(inspector.get_table_names())
    if not present:
        return None
    columns = {table: {c["name"] for c in inspector.get_columns(table)} for table in present}
    for revision, expected in _COLUMNS_AT.items():
        if columns == expected:
            return revision
    raise SchemaMismatch(
        f"the database has tables named as taskfarm's ({', '.join(sorted(present))}) but not "
        "as any taskfarm made them, so it cannot be upgraded: point DATABASE_URL at another "
        "database (or another PostgreSQL schema)"
    )
