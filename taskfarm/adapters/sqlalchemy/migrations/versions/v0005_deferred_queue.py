"""two queues of waiting tasks: those that used an attempt wait behind the untouched ones

A task waiting after a failure or a lost lease is claimed after the tasks that never ran,
so that one task failing each time cannot hold up its run. Claims find the first task of
each queue through a partial index of its own; the index of all waiting tasks gives way to
them. Building them reads the tasks table once.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    for name, attempts in (("tasks_queued_by_idx", "= 0"), ("tasks_deferred_by_idx", "!= 0")):
        where = sa.text(f"state = 'waiting' AND attempts {attempts}")
        op.create_index(
            name, "tasks", ["run_id", "idx"], postgresql_where=where, sqlite_where=where
        )
    op.drop_index("tasks_waiting_by_idx", "tasks")


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
