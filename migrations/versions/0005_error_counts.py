"""Hourly and daily roll-up of failed attempts for the statistics (``fr_error_counts``), filled from the attempts.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 00:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The start of the UTC hour and day of ``failed_at``, per dialect (SQLite stores naive UTC text).
_START = {
    "postgresql": {
        "hour": "date_trunc('hour', failed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
        "day": "date_trunc('day', failed_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'",
    },
    "sqlite": {
        "hour": "strftime('%Y-%m-%d %H:00:00.000000', failed_at)",
        "day": "strftime('%Y-%m-%d 00:00:00.000000', failed_at)",
    },
}


def upgrade() -> None:
    op.create_table(
        "fr_error_counts",
        sa.Column("period", sa.String(length=8), nullable=False),
        sa.Column("bucket", sa.DateTime(timezone=True), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint(
            "period", "bucket", "task_name", "category", "reason", "fingerprint", name=op.f("pk_fr_error_counts")
        ),
    )
    for period, start in _START[op.get_bind().dialect.name].items():
        op.execute(
            "INSERT INTO fr_error_counts "
            "(period, bucket, task_name, category, reason, fingerprint, count) "
            f"SELECT '{period}', {start}, task_name, category, reason, fingerprint, count(*) FROM fr_failed_attempts "
            f"GROUP BY {start}, task_name, category, reason, fingerprint"
        )


def downgrade() -> None:
    op.drop_table("fr_error_counts")
