"""attempt records: why and where each task's last attempt ended

Tasks gain when their last attempt started; a new table keeps the record of the last
attempt of each task whose attempts did not all succeed (its outcome, worker, start and
end, exit status and the tail of its error output). Tasks stored before have no start and
no record: their attempts ended before anybody kept them. Adding a nullable column rewrites
no row on either dialect.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

_OUTCOMES = ("done", "failed", "handed-back", "lost")


def upgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("started", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "task_attempts",
        sa.Column(
            "run_id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            sa.ForeignKey("runs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("idx", sa.BigInteger(), primary_key=True),
        sa.Column(
            "outcome",
            sa.Enum(
                *_OUTCOMES,
                name="attempt_outcome",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("worker_uuid", sa.String(64), nullable=True),
        sa.Column("started", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exit_code", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
    )


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
