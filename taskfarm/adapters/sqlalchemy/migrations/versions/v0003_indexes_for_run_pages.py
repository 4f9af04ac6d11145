"""indexes for a run's page: who holds its tasks, which of them failed

The dashboard's page of one run counts the tasks each worker holds in it and lists its first
failed tasks; these partial indexes hold only the rows those read, so the page costs what it
shows in a run of any size. Building them reads the tasks table once.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    computing = sa.text("state = 'computing'")
    op.create_index(
        "tasks_computing_by_run",
        "tasks",
        ["run_id", "worker_uuid"],
        postgresql_where=computing,
        sqlite_where=computing,
    )
    failed = sa.text("state = 'failed'")
    op.create_index(
        "tasks_failed_by_idx",
        "tasks",
        ["run_id", "idx"],
        postgresql_where=failed,
        sqlite_where=failed,
    )


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
