"""The SQL store: SQLAlchemy Core over SQLite or PostgreSQL (psycopg 3)."""

from __future__ import annotations

from taskfarm.adapters.sqlalchemy.storage import SqlStorage

__all__ = ["SqlStorage"]
