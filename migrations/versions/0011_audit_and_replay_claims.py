"""Operator audit (fr_audit_events) and bulk-replay claims (dead letter status replaying, replay_job_id).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 15:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The CHECK constraint of the dead letters' status (named after its enum type).
STATUS_CHECK = "fr_dead_letter_status"
BEFORE = ("pending", "replayed", "discarded")
AFTER = ("pending", "replaying", "replayed", "discarded")


def _in(values: Sequence[str]) -> str:
    return "status IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    op.create_table(
        "fr_audit_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target_type", sa.String(length=32), nullable=False),
        sa.Column("target_id", sa.String(length=255), nullable=True),
        sa.Column(
            "detail", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_audit_events")),
    )
    with op.batch_alter_table("fr_audit_events", schema=None) as batch_op:
        batch_op.create_index("ix_fr_audit_events_at_id", ["at", "id"], unique=False)
        batch_op.create_index("ix_fr_audit_events_action_at", ["action", "at"], unique=False)
        batch_op.create_index("ix_fr_audit_events_actor_at", ["actor", "at"], unique=False)
        batch_op.create_index("ix_fr_audit_events_target", ["target_type", "target_id", "at"], unique=False)
    with op.batch_alter_table("fr_dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("replay_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite")))
        batch_op.drop_constraint(STATUS_CHECK, type_="check")
        batch_op.create_check_constraint(STATUS_CHECK, _in(AFTER))


def downgrade() -> None:
    # a letter claimed by a job goes back to the queue (the job's batch is not finished after a downgrade)
    op.execute("UPDATE fr_dead_letters SET status = 'pending' WHERE status = 'replaying'")
    with op.batch_alter_table("fr_dead_letters", schema=None) as batch_op:
        batch_op.drop_constraint(STATUS_CHECK, type_="check")
        batch_op.create_check_constraint(STATUS_CHECK, _in(BEFORE))
        batch_op.drop_column("replay_job_id")
    with op.batch_alter_table("fr_audit_events", schema=None) as batch_op:
        batch_op.drop_index("ix_fr_audit_events_target")
        batch_op.drop_index("ix_fr_audit_events_actor_at")
        batch_op.drop_index("ix_fr_audit_events_action_at")
        batch_op.drop_index("ix_fr_audit_events_at_id")
    op.drop_table("fr_audit_events")
