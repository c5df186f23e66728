"""Retention: runs of the retention role (fr_retention_runs) and purged dead letters (purged_at).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_retention_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("runner", sa.String(length=255), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("purged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_retention_runs")),
    )
    op.create_index(op.f("ix_fr_retention_runs_started_at"), "fr_retention_runs", ["started_at"], unique=False)
    with op.batch_alter_table("fr_dead_letters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fr_dead_letters", schema=None) as batch_op:
        batch_op.drop_column("purged_at")
    op.drop_index(op.f("ix_fr_retention_runs_started_at"), table_name="fr_retention_runs")
    op.drop_table("fr_retention_runs")
