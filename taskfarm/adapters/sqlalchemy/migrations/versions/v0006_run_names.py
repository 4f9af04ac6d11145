"""run names: what people may call a run instead of its uuid

Runs gain an optional name, unique among runs that have one. Runs stored before have none.
Adding a nullable column rewrites no row on either dialect; the unique index is built from
the runs table alone, which holds one row per run.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("name", sa.String(64), nullable=True))
    op.create_index("runs_by_name", "runs", ["name"], unique=True)


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
