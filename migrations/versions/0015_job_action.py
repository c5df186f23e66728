"""Bulk jobs that discard: the action of a job (fr_replay_jobs.action, 'replay' or 'discard'; 'replay'
for the jobs made before) and how many letters it discarded (fr_replay_jobs.discarded) and why (fr_replay_jobs.reason).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("fr_replay_jobs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "action",
                sa.Enum(
                    "replay", "discard", name="fr_job_action", native_enum=False, create_constraint=True, length=32
                ),
                server_default="replay",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("discarded", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("fr_replay_jobs", schema=None) as batch_op:
        batch_op.drop_constraint("fr_job_action", type_="check")
        batch_op.drop_column("reason")
        batch_op.drop_column("discarded")
        batch_op.drop_column("action")
