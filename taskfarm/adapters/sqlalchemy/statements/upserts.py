"""INSERT ... ON CONFLICT DO NOTHING, which both dialects spell alike but SQLAlchemy keeps apart."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite


def insert_if_absent(
    dialect: str, table: sa.Table, values: Mapping[str, Any] | None = None
) -> sa.Insert:
    """Inserts nothing, without an error that would abort a PostgreSQL transaction, when a
    row with the same key exists. Tell which happened with RETURNING: SQLAlchemy reports
    no reliable rowcount for an INSERT. Without `values`, the rows are the parameters the
    statement is executed with."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(table) if values is None else insert(table).values(values)
    return statement.on_conflict_do_nothing()
