"""Initial schema: tasks, failed attempts, scheduled runs (retries and resource waits), dead letters.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 20:26:10.647647
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "fr_dead_letters",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=32), nullable=True),
        sa.Column("last_reason", sa.String(length=64), nullable=True),
        sa.Column("exc_type", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("fingerprint", sa.String(length=32), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "args", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "kwargs", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "options", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "headers", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("replayable", sa.Boolean(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "replayed",
                "discarded",
                name="fr_dead_letter_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("replayed_task_id", sa.String(length=255), nullable=True),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("discarded_reason", sa.Text(), nullable=True),
        sa.Column("discarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_dead_letters")),
        sa.UniqueConstraint("task_id", name=op.f("uq_fr_dead_letters_task_id")),
    )
    op.create_index(op.f("ix_fr_dead_letters_created_at"), "fr_dead_letters", ["created_at"], unique=False)
    op.create_index(op.f("ix_fr_dead_letters_fingerprint"), "fr_dead_letters", ["fingerprint"], unique=False)
    op.create_index(op.f("ix_fr_dead_letters_reason"), "fr_dead_letters", ["reason"], unique=False)
    op.create_index("ix_fr_dead_letters_status_created_at", "fr_dead_letters", ["status", "created_at"], unique=False)
    op.create_index(op.f("ix_fr_dead_letters_task_name"), "fr_dead_letters", ["task_name"], unique=False)
    op.create_table(
        "fr_failed_attempts",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=True),
        sa.Column("worker", sa.String(length=255), nullable=True),
        sa.Column("exc_type", sa.String(length=255), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("traceback", sa.Text(), nullable=True),
        sa.Column("category", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=True),
        sa.Column("retry_after", sa.Float(), nullable=True),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("user_message", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("rule", sa.String(length=255), nullable=True),
        sa.Column(
            "decision",
            sa.Enum(
                "retry",
                "wait",
                "fail_fast",
                "dead_letter",
                name="fr_decision_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("decision_reason", sa.String(length=64), nullable=True),
        sa.Column("decision_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delay", sa.Float(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("duration_ms", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_failed_attempts")),
        sa.UniqueConstraint("task_id", "attempt", name="uq_fr_failed_attempts_task_attempt"),
    )
    op.create_index(
        "ix_fr_failed_attempts_category_failed_at", "fr_failed_attempts", ["category", "failed_at"], unique=False
    )
    op.create_index(op.f("ix_fr_failed_attempts_failed_at"), "fr_failed_attempts", ["failed_at"], unique=False)
    op.create_index(
        "ix_fr_failed_attempts_fingerprint_failed_at", "fr_failed_attempts", ["fingerprint", "failed_at"], unique=False
    )
    op.create_index(
        "ix_fr_failed_attempts_reason_failed_at", "fr_failed_attempts", ["reason", "failed_at"], unique=False
    )
    op.create_index(
        "ix_fr_failed_attempts_task_name_failed_at", "fr_failed_attempts", ["task_name", "failed_at"], unique=False
    )
    op.create_table(
        "fr_scheduled_runs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column(
            "kind",
            sa.Enum("retry", "resource_wait", name="fr_run_kind", native_enum=False, create_constraint=True, length=32),
            nullable=False,
        ),
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=True),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "dispatched",
                "running",
                "done",
                "expired",
                "cancelled",
                name="fr_run_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("dispatch_token", sa.String(length=64), nullable=True),
        sa.Column("dispatch_count", sa.Integer(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind <> 'resource_wait' OR (resource IS NOT NULL AND deadline IS NOT NULL)",
            name="ck_fr_scheduled_runs_wait_has_resource",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fr_scheduled_runs")),
        sa.UniqueConstraint("task_id", "attempt", name="uq_fr_scheduled_runs_task_attempt"),
    )
    op.create_index("ix_fr_scheduled_runs_status_due_at", "fr_scheduled_runs", ["status", "due_at"], unique=False)
    op.create_table(
        "fr_tasks",
        sa.Column("task_id", sa.String(length=255), nullable=False),
        sa.Column("task_name", sa.String(length=255), nullable=False),
        sa.Column("queue", sa.String(length=255), nullable=True),
        sa.Column(
            "state",
            sa.Enum(
                "retrying",
                "waiting",
                "succeeded",
                "failed_fast",
                "dead_lettered",
                "discarded",
                name="fr_task_state",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column(
            "args", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "kwargs", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "options", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column(
            "headers", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("replayable", sa.Boolean(), nullable=False),
        sa.Column("root_id", sa.String(length=255), nullable=True),
        sa.Column("parent_id", sa.String(length=255), nullable=True),
        sa.Column("replay_of", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("last_category", sa.String(length=32), nullable=True),
        sa.Column("last_reason", sa.String(length=64), nullable=True),
        sa.Column("user_message", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("terminal_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("task_id", name=op.f("pk_fr_tasks")),
    )
    op.create_index(op.f("ix_fr_tasks_created_at"), "fr_tasks", ["created_at"], unique=False)
    op.create_index(op.f("ix_fr_tasks_replay_of"), "fr_tasks", ["replay_of"], unique=False)
    op.create_index(op.f("ix_fr_tasks_root_id"), "fr_tasks", ["root_id"], unique=False)
    op.create_index(op.f("ix_fr_tasks_state"), "fr_tasks", ["state"], unique=False)
    op.create_index(op.f("ix_fr_tasks_task_name"), "fr_tasks", ["task_name"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_fr_tasks_task_name"), table_name="fr_tasks")
    op.drop_index(op.f("ix_fr_tasks_state"), table_name="fr_tasks")
    op.drop_index(op.f("ix_fr_tasks_root_id"), table_name="fr_tasks")
    op.drop_index(op.f("ix_fr_tasks_replay_of"), table_name="fr_tasks")
    op.drop_index(op.f("ix_fr_tasks_created_at"), table_name="fr_tasks")
    op.drop_table("fr_tasks")
    op.drop_index("ix_fr_scheduled_runs_status_due_at", table_name="fr_scheduled_runs")
    op.drop_table("fr_scheduled_runs")
    op.drop_index("ix_fr_failed_attempts_task_name_failed_at", table_name="fr_failed_attempts")
    op.drop_index("ix_fr_failed_attempts_reason_failed_at", table_name="fr_failed_attempts")
    op.drop_index("ix_fr_failed_attempts_fingerprint_failed_at", table_name="fr_failed_attempts")
    op.drop_index(op.f("ix_fr_failed_attempts_failed_at"), table_name="fr_failed_attempts")
    op.drop_index("ix_fr_failed_attempts_category_failed_at", table_name="fr_failed_attempts")
    op.drop_table("fr_failed_attempts")
    op.drop_index(op.f("ix_fr_dead_letters_task_name"), table_name="fr_dead_letters")
    op.drop_index("ix_fr_dead_letters_status_created_at", table_name="fr_dead_letters")
    op.drop_index(op.f("ix_fr_dead_letters_reason"), table_name="fr_dead_letters")
    op.drop_index(op.f("ix_fr_dead_letters_fingerprint"), table_name="fr_dead_letters")
    op.drop_index(op.f("ix_fr_dead_letters_created_at"), table_name="fr_dead_letters")
    op.drop_table("fr_dead_letters")
