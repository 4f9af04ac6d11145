"""The schema's history as Alembic migrations: `env.py` runs them, `versions/` holds them.

Each revision spells out its DDL rather than deriving it from `tables.py`, so that it stays
what it was when it was written while the tables move on.
"""
