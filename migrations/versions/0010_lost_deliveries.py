"""Deliveries lost to a dying worker (fr_lost_deliveries) and "attempt i of N" (max_attempts).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_lost_deliveries",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("delivery", sa.Integer(), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=True),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("signal", sa.String(length=32), nullable=True),
        sa.Column("exit_code", sa.Integer(), nullable=True),
        sa.Column("memory_limit", sa.String(length=255), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lost_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_lost_deliveries")),
        sa.UniqueConstraint("task_id", "attempt", "delivery", name="uq_fr_lost_deliveries_task_attempt_delivery"),
    )
    with op.batch_alter_table("fr_lost_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_fr_lost_deliveries_lost_at", ["lost_at"], unique=False)
    with op.batch_alter_table("fr_failed_attempts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("max_attempts", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fr_failed_attempts", schema=None) as batch_op:
        batch_op.drop_column("max_attempts")
    with op.batch_alter_table("fr_lost_deliveries", schema=None) as batch_op:
        batch_op.drop_index("ix_fr_lost_deliveries_lost_at")

    op.drop_table("fr_lost_deliveries")
