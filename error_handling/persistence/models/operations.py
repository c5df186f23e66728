"""Tables of operations: process heartbeats, compensation steps, the audit trail and retention runs."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from error_handling.persistence.models.base import Base, BigId, Json, enum_type


class Heartbeat(Base):
    """A long-running process (a dispatcher) saying it is alive; the health endpoint reads these."""

    __tablename__ = "fr_heartbeats"

    #: ``kind@hostname:pid``, unique per process.
    name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(32), index=True)
    hostname: Mapped[str] = mapped_column(sa.String(255))
    pid: Mapped[int] = mapped_column(sa.Integer)
    started_at: Mapped[dt.datetime]
    last_seen: Mapped[dt.datetime]


class StepStatus(enum.StrEnum):
    """Where a compensation step stands."""

    #: Recorded by its task; nothing to undo unless the task (or its saga) fails for good.
    RECORDED = "recorded"
    #: Its task or saga failed for good: the undo is to run (newest step first).
    PENDING = "pending"
    #: A compensator claimed it and is running the undo.
    RUNNING = "running"
    #: Terminal: the undo ran.
    COMPENSATED = "compensated"
    #: The undo failed for good (the compensation's dead letter can be replayed).
    COMPENSATION_FAILED = "compensation_failed"
    #: Terminal: not undone on purpose (e.g. a step with the same idempotency key was undone already).
    SKIPPED = "skipped"


class CompensationStep(Base):
    """A side effect a task made, with how to undo it: undone in reverse order when the task, or a
    later task of its saga (its Celery chain), fails for good."""

    __tablename__ = "fr_compensation_steps"
    __table_args__ = (sa.Index("ix_fr_compensation_steps_saga_id_status", "saga_id", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(sa.String(255), index=True)
    #: The saga: the root id of the task's Celery chain (the task's own id when it has none).
    saga_id: Mapped[str] = mapped_column(sa.String(255))
    task_name: Mapped[str] = mapped_column(sa.String(255))
    #: The attempt that recorded it.
    attempt: Mapped[int] = mapped_column(sa.Integer)
    #: Its order within the task (1, 2, ...).
    seq: Mapped[int] = mapped_column(sa.Integer)
    name: Mapped[str] = mapped_column(sa.String(255))
    #: ``callable`` (an importable function) or ``signature`` (a Celery signature).
    undo_kind: Mapped[str] = mapped_column(sa.String(16))
    #: How to undo: ``{"path": "module:qualname"}`` or a Celery signature as a dict (secrets sealed).
    undo: Mapped[Any] = mapped_column(Json)
    #: What the undo needs, with secret values sealed.
    data: Mapped[Any] = mapped_column(Json)
    #: Unique: recording the same step twice (a retried attempt) keeps one row.
    idempotency_key: Mapped[str] = mapped_column(sa.String(255), unique=True)
    status: Mapped[StepStatus] = mapped_column(enum_type(StepStatus, "fr_step_status"))
    #: How many times the undo was tried.
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: The last error of the undo, redacted.
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: Who claimed it and when (a claim older than the lease may be taken over: its holder died).
    claim_token: Mapped[str | None] = mapped_column(sa.String(64))
    claimed_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]


class AuditEvent(Base):
    """An operator action: who did what, when, to which target (written in the action's transaction).

    ``action`` is an :class:`~error_handling.persistence.audit.AuditAction` value; it is a plain string
    column (no CHECK constraint) so later actions need no migration.
    """

    __tablename__ = "fr_audit_events"
    __table_args__ = (
        sa.Index("ix_fr_audit_events_at_id", "at", "id"),
        sa.Index("ix_fr_audit_events_action_at", "action", "at"),
        sa.Index("ix_fr_audit_events_actor_at", "actor", "at"),
        sa.Index("ix_fr_audit_events_target", "target_type", "target_id", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    at: Mapped[dt.datetime]
    #: The API key's name (``key-<sha256 prefix>`` for an unnamed key, ``local`` for a loopback client
    #: without keys) or ``cli:<os user>``.
    actor: Mapped[str] = mapped_column(sa.String(255))
    #: What was done: ``dead_letter.replay``, ``dead_letter.discard``, ``replay_job.create``, ...
    action: Mapped[str] = mapped_column(sa.String(64))
    #: The kind of target (``dead_letter``, ``replay_job``, ``breaker``) and its id (or service name).
    target_type: Mapped[str] = mapped_column(sa.String(32))
    target_id: Mapped[str | None] = mapped_column(sa.String(255))
    #: What the action did, redacted: e.g. a replay's new task id, queue and the diff of its edits.
    detail: Mapped[Any] = mapped_column(Json)


class RetentionRun(Base):
    """One run of the retention role by a dispatcher: what it deleted per table and the dead letters
    whose secrets it purged. The health endpoint shows the latest finished one."""

    __tablename__ = "fr_retention_runs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The dispatcher that ran it (``dispatcher@host:pid``).
    runner: Mapped[str] = mapped_column(sa.String(255))
    started_at: Mapped[dt.datetime] = mapped_column(index=True)
    #: None while it runs (or if its dispatcher stopped before the end).
    finished_at: Mapped[dt.datetime | None]
    #: Rows deleted so far, by table: ``{"fr_failed_attempts": 1200, ...}``.
    deleted: Mapped[Any] = mapped_column(Json)
    #: Dead letters whose sealed secrets were purged.
    purged: Mapped[int] = mapped_column(sa.Integer, default=0)
