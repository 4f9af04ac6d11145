"""The database schema: the one place that knows table and column names."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa

from taskfarm.domain import AttemptOutcome, TaskState
from taskfarm.domain.limits import MAX_HOSTNAME_LENGTH, MAX_UUID_LENGTH
from taskfarm.domain.logins import MAX_COUNTED_BY_LENGTH
from taskfarm.domain.names import MAX_NAME_LENGTH
from taskfarm.domain.tokens import MAX_TOKEN_ID_LENGTH
from taskfarm.domain.user import MAX_USERNAME_LENGTH


class UtcDateTime(sa.TypeDecorator[dt.datetime]):
    """A timezone-aware UTC datetime on every dialect.

    SQLite keeps datetimes as text without an offset and would hand back naive ones.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"refusing to store a naive datetime: {value!r}")
        utc = value.astimezone(dt.UTC)
        return utc.replace(tzinfo=None) if dialect.name == "sqlite" else utc

    def process_result_value(
        self, value: dt.datetime | None, dialect: sa.Dialect
    ) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


# SQLite only autoincrements a column declared exactly INTEGER PRIMARY KEY.
_Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _values_of(enum: type[TaskState | AttemptOutcome], name: str) -> sa.Enum:
    """An enum stored as its values' text, checked by a constraint: no type of its own in
    PostgreSQL, which a new value would have to be added to."""
    return sa.Enum(
        enum,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [member.value for member in members],
    )


_State = _values_of(TaskState, "task_state")

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(MAX_UUID_LENGTH), nullable=False, unique=True),
    sa.Column("num_tasks", sa.BigInteger, nullable=False),
    # The run's policy; NULL is "no lease" and "no limit", as None is in `RunPolicy`.
    sa.Column("lease_seconds", sa.Integer, nullable=True),
    sa.Column("max_attempts", sa.Integer, nullable=True),
    # Tasks at or past the frontier have never been handed out, nor stored unless written
    # out of order: a run costs one row until its tasks are touched.
    sa.Column("frontier", sa.BigInteger, nullable=False, default=0),
    sa.Column("num_computing", sa.BigInteger, nullable=False, default=0),
    sa.Column("num_done", sa.BigInteger, nullable=False, default=0),
    sa.Column("num_failed", sa.BigInteger, nullable=False, default=0),
    sa.Column("progress", sa.BigInteger, nullable=False, default=0),
    sa.Column("created_at", UtcDateTime, nullable=False, server_default=sa.func.now()),
    sa.Column("name", sa.String(MAX_NAME_LENGTH), nullable=True),
    # Where the run's tasks get their input (`InputKind`), NULL when they are only indices;
    # a sweep's axes, as JSON, read only by `RunStore.run_sweep`.
    sa.Column("inputs", sa.String(8), nullable=True),
    sa.Column("sweep", sa.Text, nullable=True),
    # The username of whoever created it; NULL (admins only) for runs from before owners,
    # and for those of a deleted user.
    sa.Column("owner", sa.String(MAX_USERNAME_LENGTH), nullable=True),
)
# Unique where set: runs without a name are NULL, and NULLs are distinct on both dialects.
sa.Index("runs_by_name", runs.c.name, unique=True)
sa.Index("runs_by_owner", runs.c.owner)

tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("run_id", _Id, sa.ForeignKey(runs.c.id, ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("state", _State, nullable=False),
    sa.Column("progress", sa.BigInteger, nullable=False),
    sa.Column("worker_uuid", sa.String(MAX_UUID_LENGTH), nullable=True),
    sa.Column("attempts", sa.BigInteger, nullable=False, default=0),
    sa.Column("lease_expires", UtcDateTime, nullable=True),
    # When the task's last attempt started: its record needs it if the attempt fails.
    sa.Column("started", UtcDateTime, nullable=True),
    sa.Column(
        "updated_at",
        sa.DateTime(timezone=True),
        nullable=False,
        server_default=sa.func.now(),
        onupdate=sa.func.now(),
    ),
)


def _in_state(state: TaskState) -> sa.ColumnElement[bool]:
    # The conditions of the partial indexes below, written into statements as literals: a plan
    # PostgreSQL makes for any value of a bound parameter could not use those indexes.
    return tasks.c.state == sa.literal(state, _State, literal_execute=True)


is_waiting = _in_state(TaskState.WAITING)
_fresh = tasks.c.attempts == sa.literal(0, literal_execute=True)
#: The two queues of waiting tasks (`Task.deferred`): claims take the first before the tasks
#: past the frontier, the second after them.
is_queued = sa.and_(is_waiting, _fresh)
is_deferred = sa.and_(is_waiting, sa.not_(_fresh))
is_computing = _in_state(TaskState.COMPUTING)
is_failed = _in_state(TaskState.FAILED)


def _partial_index(name: str, where: sa.ColumnElement[bool], *columns: sa.Column[Any]) -> None:
    """An index of the rows `where` holds only, on both dialects."""
    sa.Index(name, *columns, postgresql_where=where, sqlite_where=where)


# Claims look for the lowest waiting task of a run in each queue; only waiting rows need
# indexing for that.
_partial_index("tasks_queued_by_idx", is_queued, tasks.c.run_id, tasks.c.idx)
_partial_index("tasks_deferred_by_idx", is_deferred, tasks.c.run_id, tasks.c.idx)
# Sweeps look for the computing tasks whose lease ran out, and counting the tasks each worker
# holds reads every computing task: this index has all they need, and only computing rows.
_partial_index("tasks_computing_by_lease", is_computing, tasks.c.lease_expires, tasks.c.worker_uuid)

# A look at one run counts the tasks each worker holds in it, and lists its first failed tasks:
# both read only rows they return or count, in runs of any size.
_partial_index("tasks_computing_by_run", is_computing, tasks.c.run_id, tasks.c.worker_uuid)
_partial_index("tasks_failed_by_idx", is_failed, tasks.c.run_id, tasks.c.idx)

_Outcome = _values_of(AttemptOutcome, "attempt_outcome")

# The record of each task's last attempt, for the tasks whose attempts did not all succeed
# (`Attempt.kept_anyway`): a run whose tasks succeed at once has no rows here.
task_attempts = sa.Table(
    "task_attempts",
    metadata,
    sa.Column("run_id", _Id, sa.ForeignKey(runs.c.id, ondelete="CASCADE"), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("outcome", _Outcome, nullable=False),
    sa.Column("worker_uuid", sa.String(MAX_UUID_LENGTH), nullable=True),
    sa.Column("started", UtcDateTime, nullable=True),
    sa.Column("ended", UtcDateTime, nullable=True),
    sa.Column("exit_code", sa.BigInteger, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)

workers = sa.Table(
    "workers",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("uuid", sa.String(MAX_UUID_LENGTH), nullable=False, unique=True),
    sa.Column("hostname", sa.String(MAX_HOSTNAME_LENGTH), nullable=False),
    sa.Column("pid", sa.BigInteger, nullable=False),
    sa.Column("started", UtcDateTime, nullable=False),
    sa.Column("last_seen", UtcDateTime, nullable=False),
    sa.Column("owner", sa.String(MAX_USERNAME_LENGTH), nullable=True),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("id", _Id, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(MAX_USERNAME_LENGTH), nullable=False, unique=True),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("token_stamp", sa.Text, nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Worker tokens: what each may do, and a digest of it (the token itself is never stored).
worker_tokens = sa.Table(
    "worker_tokens",
    metadata,
    sa.Column("id", sa.String(MAX_TOKEN_ID_LENGTH), primary_key=True),
    sa.Column("digest", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(MAX_NAME_LENGTH), nullable=True),
    sa.Column("run_uuid", sa.String(MAX_UUID_LENGTH), nullable=False),
    sa.Column("owner", sa.String(MAX_USERNAME_LENGTH), nullable=False),
    sa.Column("created", UtcDateTime, nullable=False),
    sa.Column("expires", UtcDateTime, nullable=True),
)
sa.Index("worker_tokens_by_owner", worker_tokens.c.owner)

# Failed logins lately, by what they are counted by (a username, a client address).
login_failures = sa.Table(
    "login_failures",
    metadata,
    sa.Column("counted_by", sa.String(MAX_COUNTED_BY_LENGTH), primary_key=True),
    sa.Column("since", UtcDateTime, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
)

settings = sa.Table(
    "settings",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.LargeBinary, nullable=False),
)

SIGNING_KEY = "signing_key"

# The stored inputs of runs' tasks, as JSON text. Keyed by the run's uuid rather than its id:
# they are written before the run exists (`RunStore.stage_inputs`).
task_inputs = sa.Table(
    "task_inputs",
    metadata,
    sa.Column("run_uuid", sa.String(MAX_UUID_LENGTH), primary_key=True),
    sa.Column("idx", sa.BigInteger, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)
