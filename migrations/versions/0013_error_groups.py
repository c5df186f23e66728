"""Error groups (fr_error_groups, filled from the attempts recorded so far) and the queue in the error
roll-up (fr_error_counts.queue, part of its key; '' for the rows counted before).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-08 00:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OLD_KEY = ["period", "bucket", "task_name", "category", "reason", "fingerprint"]
_NEW_KEY = ["period", "bucket", "task_name", "queue", "category", "reason", "fingerprint"]
_STATES = ("new", "ongoing", "escalating", "regressed", "resolved", "ignored")

#: Each fingerprint's group from its attempts: first and last seen, how many, and its latest attempt's
#: kind (a group whose first attempt is older than a day reads as ``ongoing``).
_FILL = """
INSERT INTO fr_error_groups (fingerprint, category, reason, exc_type, title, task_name, first_seen, last_seen,
    times_seen, recovered, failed_fast, dead_lettered, state, state_changed_at, regressions, ignore_until_escalating)
SELECT a.fingerprint, a.category, a.reason, a.exc_type,
    substr(coalesce(a.exc_type || ': ', '') || a.message, 1, 500), a.task_name,
    g.first_seen, g.last_seen, g.n, 0, g.failed_fast, g.dead_lettered, 'new', g.first_seen, 0, false
FROM fr_failed_attempts a JOIN (
    SELECT fingerprint, max(id) AS latest, min(failed_at) AS first_seen, max(failed_at) AS last_seen, count(*) AS n,
        sum(CASE WHEN decision = 'fail_fast' THEN 1 ELSE 0 END) AS failed_fast,
        sum(CASE WHEN decision = 'dead_letter' THEN 1 ELSE 0 END) AS dead_lettered
    FROM fr_failed_attempts GROUP BY fingerprint
) g ON a.id = g.latest
"""
#: Tasks that succeeded after their last failure, counted in that failure's group.
_FILL_RECOVERED = """
UPDATE fr_error_groups SET recovered = (
    SELECT count(*) FROM fr_tasks t JOIN fr_failed_attempts a ON a.task_id = t.task_id AND a.attempt = t.attempts
    WHERE t.state = 'succeeded' AND a.fingerprint = fr_error_groups.fingerprint
)
"""


def upgrade() -> None:
    op.create_table(
        "fr_error_groups",
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("exc_type", sa.String(length=255), nullable=True),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("times_seen", sa.BigInteger(), nullable=False),
        sa.Column("recovered", sa.BigInteger(), nullable=False),
        sa.Column("failed_fast", sa.BigInteger(), nullable=False),
        sa.Column("dead_lettered", sa.BigInteger(), nullable=False),
        sa.Column(
            "state",
            sa.Enum(*_STATES, name="fr_group_state", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("state_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("regressions", sa.Integer(), nullable=False),
        sa.Column("ignore_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ignore_until_escalating", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("fingerprint", name=op.f("pk_fr_error_groups")),
    )
    op.create_index("ix_fr_error_groups_last_seen", "fr_error_groups", ["last_seen"], unique=False)
    op.create_index("ix_fr_error_groups_first_seen", "fr_error_groups", ["first_seen"], unique=False)
    op.create_index("ix_fr_error_groups_state_last_seen", "fr_error_groups", ["state", "last_seen"], unique=False)
    op.create_index(op.f("ix_fr_tasks_terminal_at"), "fr_tasks", ["terminal_at"], unique=False)
    op.execute(_FILL)
    op.execute(_FILL_RECOVERED)
    with op.batch_alter_table("fr_error_counts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue", sa.String(length=255), server_default="", nullable=False))
        batch_op.drop_constraint("pk_fr_error_counts", type_="primary")
        batch_op.create_primary_key("pk_fr_error_counts", _NEW_KEY)
        batch_op.create_index(
            "ix_fr_error_counts_fingerprint_period_bucket", ["fingerprint", "period", "bucket"], unique=False
        )
        batch_op.create_index("ix_fr_error_counts_task_name_period_bucket", ["task_name", "period", "bucket"], unique=False)


def downgrade() -> None:
    op.execute(  # the rows of one kind that differed only by queue become one row again
        "CREATE TABLE fr_error_counts_merged AS SELECT period, bucket, task_name, category, reason, fingerprint, "
        "sum(count) AS count FROM fr_error_counts GROUP BY period, bucket, task_name, category, reason, fingerprint"
    )
    op.execute("DELETE FROM fr_error_counts")
    with op.batch_alter_table("fr_error_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_fr_error_counts_task_name_period_bucket")
        batch_op.drop_index("ix_fr_error_counts_fingerprint_period_bucket")
        batch_op.drop_constraint("pk_fr_error_counts", type_="primary")
        batch_op.drop_column("queue")
        batch_op.create_primary_key("pk_fr_error_counts", _OLD_KEY)
    op.execute(
        "INSERT INTO fr_error_counts (period, bucket, task_name, category, reason, fingerprint, count) "
        "SELECT period, bucket, task_name, category, reason, fingerprint, count FROM fr_error_counts_merged"
    )
    op.drop_table("fr_error_counts_merged")
    op.drop_index(op.f("ix_fr_tasks_terminal_at"), table_name="fr_tasks")
    op.drop_index("ix_fr_error_groups_state_last_seen", table_name="fr_error_groups")
    op.drop_index("ix_fr_error_groups_first_seen", table_name="fr_error_groups")
    op.drop_index("ix_fr_error_groups_last_seen", table_name="fr_error_groups")
    op.drop_table("fr_error_groups")
