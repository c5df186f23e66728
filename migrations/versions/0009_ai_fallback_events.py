"""Fallback chain calls served by a later provider or by the degraded result (ai_fallback_events).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-24 07:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ai_fallback_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("provider", sa.String(length=128), nullable=True),
        sa.Column("degraded", sa.Boolean(), nullable=False),
        sa.Column(
            "passed_over",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("task_id", sa.String(length=255), nullable=True),
        sa.Column("task_name", sa.String(length=255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_fallback_events")),
    )
    with op.batch_alter_table("ai_fallback_events", schema=None) as batch_op:
        batch_op.create_index("ix_ai_fallback_events_service_at", ["service", "at"], unique=False)
        batch_op.create_index("ix_ai_fallback_events_task_id", ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ai_fallback_events", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_fallback_events_task_id")
        batch_op.drop_index("ix_ai_fallback_events_service_at")

    op.drop_table("ai_fallback_events")
