"""Per-service call health (ai_service_health) and failed calls (ai_service_errors).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ai_service_errors",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_service_errors")),
    )
    with op.batch_alter_table("ai_service_errors", schema=None) as batch_op:
        batch_op.create_index("ix_ai_service_errors_service_at", ["service", "at"], unique=False)

    op.create_table(
        "ai_service_health",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column(
            "latency_histogram",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ai_service_health")),
    )
    with op.batch_alter_table("ai_service_health", schema=None) as batch_op:
        batch_op.create_index("ix_ai_service_health_service_minute", ["service", "minute"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("ai_service_health", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_service_health_service_minute")

    op.drop_table("ai_service_health")
    with op.batch_alter_table("ai_service_errors", schema=None) as batch_op:
        batch_op.drop_index("ix_ai_service_errors_service_at")

    op.drop_table("ai_service_errors")
