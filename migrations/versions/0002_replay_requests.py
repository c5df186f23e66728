"""Replay requests: every replay of a dead letter (the task it published), with its idempotency key.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 21:38:58.020458
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_replay_requests",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("dead_letter_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=True),
        sa.Column("forced", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["dead_letter_id"],
            ["fr_dead_letters.id"],
            name=op.f("fk_fr_replay_requests_dead_letter_id_fr_dead_letters"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_replay_requests")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_fr_replay_requests_idempotency_key")),
        sa.UniqueConstraint("task_id", name=op.f("uq_fr_replay_requests_task_id")),
    )
    op.create_index(
        op.f("ix_fr_replay_requests_dead_letter_id"), "fr_replay_requests", ["dead_letter_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_fr_replay_requests_dead_letter_id"), table_name="fr_replay_requests")
    op.drop_table("fr_replay_requests")
