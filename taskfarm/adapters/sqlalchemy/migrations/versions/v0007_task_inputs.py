"""task inputs: runs over the lines of a file, a JSON list or a parameter sweep

Runs gain the kind of their tasks' inputs and, for a sweep, its axes as JSON; a new table
keeps stored inputs, one row per task, keyed by the run's uuid (they are written before the
run). Runs stored before have none. Adding nullable columns rewrites no row.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("inputs", sa.String(8), nullable=True))
        batch.add_column(sa.Column("sweep", sa.Text(), nullable=True))
    op.create_table(
        "task_inputs",
        sa.Column("run_uuid", sa.String(64), primary_key=True),
        sa.Column("idx", sa.BigInteger(), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
