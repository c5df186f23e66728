"""Success counts per task and queue, per minute, hour and day (``fr_task_counts``).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-14 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_task_counts",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=False),
        sa.Column("successes", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("period", "bucket", "task_name", "queue", name=op.f("pk_fr_task_counts")),
    )


def downgrade() -> None:
    op.drop_table("fr_task_counts")
