"""Heartbeats of long-running processes (dispatchers), for the health endpoint.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 22:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_heartbeats",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("hostname", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_fr_heartbeats")),
    )
    op.create_index(op.f("ix_fr_heartbeats_kind"), "fr_heartbeats", ["kind"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fr_heartbeats_kind"), table_name="fr_heartbeats")
    op.drop_table("fr_heartbeats")
