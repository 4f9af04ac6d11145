"""owners and tokens: runs belong to users, admins see all; worker tokens; failed logins

Runs and workers gain their owner (NULL for those stored before: only admins see them), and
users a role.
Every user stored before becomes an admin, so that an upgrade changes nobody's access. New
tables keep worker tokens (a digest of each, never the token) and the failed logins counted
against password guessing.

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
        batch.create_index("runs_by_owner", ["owner"])
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("owner", sa.String(64), nullable=True))
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(sa.text("UPDATE users SET admin = :admin").bindparams(admin=True))
    op.create_table(
        "worker_tokens",
        sa.Column("id", sa.String(16), primary_key=True),
        sa.Column("digest", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(64), nullable=True),
        sa.Column("run_uuid", sa.String(64), nullable=False),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("worker_tokens_by_owner", "worker_tokens", ["owner"])
    op.create_table(
        "login_failures",
        sa.Column("counted_by", sa.String(128), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
