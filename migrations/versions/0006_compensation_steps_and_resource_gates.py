"""Compensation steps (fr_compensation_steps), resource gate state and capacity leases.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 00:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_compensation_steps",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("saga_id", sa.String(length=255), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("undo_kind", sa.String(length=16), nullable=False),
        sa.Column(
            "undo", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "data", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("idempotency_key", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "recorded",
                "pending",
                "running",
                "compensated",
                "compensation_failed",
                "skipped",
                name="fr_step_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("claim_token", sa.String(length=64), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_compensation_steps")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_fr_compensation_steps_idempotency_key")),
    )
    with op.batch_alter_table("fr_compensation_steps", schema=None) as batch_op:
        batch_op.create_index("ix_fr_compensation_steps_saga_id_status", ["saga_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_fr_compensation_steps_task_id"), ["task_id"], unique=False)

    op.create_table(
        "fr_resource_gates",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=True),
        sa.Column("probe", sa.String(length=255), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("monitor", sa.String(length=255), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_fr_resource_gates")),
    )
    op.create_table(
        "fr_resource_leases",
        sa.Column("gate", sa.String(length=64), nullable=False),
        sa.Column("holder", sa.String(length=255), nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("gate", "holder", name=op.f("pk_fr_resource_leases")),
    )
    with op.batch_alter_table("fr_resource_leases", schema=None) as batch_op:
        batch_op.create_index("ix_fr_resource_leases_gate_expires_at", ["gate", "expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("fr_resource_leases", schema=None) as batch_op:
        batch_op.drop_index("ix_fr_resource_leases_gate_expires_at")

    op.drop_table("fr_resource_leases")
    op.drop_table("fr_resource_gates")
    with op.batch_alter_table("fr_compensation_steps", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_fr_compensation_steps_task_id"))
        batch_op.drop_index("ix_fr_compensation_steps_saga_id_status")

    op.drop_table("fr_compensation_steps")
