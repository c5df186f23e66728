"""Circuit breaker transitions (circuit_breaker_events).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 01:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "circuit_breaker_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("service", sa.String(length=128), nullable=False),
        sa.Column("from_state", sa.String(length=16), nullable=False),
        sa.Column("to_state", sa.String(length=16), nullable=False),
        sa.Column("cause", sa.String(length=32), nullable=False),
        sa.Column("calls", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=255), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_circuit_breaker_events")),
    )
    with op.batch_alter_table("circuit_breaker_events", schema=None) as batch_op:
        batch_op.create_index("ix_circuit_breaker_events_service_at", ["service", "at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("circuit_breaker_events", schema=None) as batch_op:
        batch_op.drop_index("ix_circuit_breaker_events_service_at")

    op.drop_table("circuit_breaker_events")
