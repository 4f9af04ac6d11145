"""leases, attempts and failed tasks; when each worker was last heard from

Runs gain a policy (a lease, a limit on attempts) and a count of failed tasks; tasks gain
their attempts, their lease's expiry and the `failed` state; workers the time they were last
seen. The result is the schema `metadata.create_all` made from then on, before there were
migrations: a database made that way is the same as one upgraded here, but for the order of
the columns (those added here come last).

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    _runs()
    _tasks()
    _workers()


def _runs() -> None:
    # Runs made before keep having no lease and no limit (NULL), and none of their tasks has
    # failed. A NOT NULL column is added to the rows there with a default, which the second
    # step drops (rebuilding the table on SQLite): `create_all` makes the column without one.
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("lease_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("max_attempts", sa.Integer(), nullable=True))
        batch.add_column(
            sa.Column("num_failed", sa.BigInteger(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("runs") as batch:
        batch.alter_column("num_failed", server_default=None)


def _tasks() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("attempts", sa.BigInteger(), nullable=False, server_default="0"))
        # Old runs have no lease, so no task of theirs has a lease to expire.
        batch.add_column(sa.Column("lease_expires", sa.DateTime(timezone=True), nullable=True))
    # Attempts count claims. The old server set a task's worker only when it handed the task
    # out and kept it while the task was computed and once it was done: such a task was
    # claimed, once at least. A task with no worker was handed back, restarted or written
    # without a claim, and a restart counts from 0 again.
    op.execute("UPDATE tasks SET attempts = 1 WHERE worker_uuid IS NOT NULL")
    with op.batch_alter_table("tasks") as batch:
        batch.alter_column("attempts", server_default=None)
        batch.drop_constraint("task_state", type_="check")
        batch.create_check_constraint(
            "task_state", "state IN ('waiting', 'computing', 'done', 'failed')"
        )
    # Sweeps, and counting the tasks each worker holds, read only computing tasks.
    computing = sa.text("state = 'computing'")
    op.create_index(
        "tasks_computing_by_lease",
        "tasks",
        ["lease_expires", "worker_uuid"],
        postgresql_where=computing,
        sqlite_where=computing,
    )


def _workers() -> None:
    # The last time a worker was heard from for sure is when it registered.
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE workers SET last_seen = started")
    with op.batch_alter_table("workers") as batch:
        batch.alter_column("last_seen", existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    raise NotImplementedError("taskfarm's schema is only ever upgraded: restore a backup instead")
