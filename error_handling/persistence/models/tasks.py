"""Tables of a failing task's life: its record, failed attempts, scheduled runs (retries and
resource waits), lost deliveries and the hour/day error roll-up."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from error_handling.persistence.models.base import Base, BigId, Json, enum_type


class TaskState(enum.StrEnum):
    """Where a task that failed at least once stands."""

    #: A retry is scheduled.
    RETRYING = "retrying"
    #: Parked until a resource is available.
    WAITING = "waiting"
    #: Terminal: a later attempt succeeded.
    SUCCEEDED = "succeeded"
    #: Terminal: failed validation; the user was told why; no retry.
    FAILED_FAST = "failed_fast"
    #: Terminal: in the dead-letter queue.
    DEAD_LETTERED = "dead_lettered"
    #: Terminal: an operator discarded it.
    DISCARDED = "discarded"

    @property
    def terminal(self) -> bool:
        """Whether the state is final."""
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset({TaskState.SUCCEEDED, TaskState.FAILED_FAST, TaskState.DEAD_LETTERED, TaskState.DISCARDED})


class DecisionKind(enum.StrEnum):
    """The decision recorded with a failed attempt."""

    RETRY = "retry"
    WAIT = "wait"
    FAIL_FAST = "fail_fast"
    DEAD_LETTER = "dead_letter"


class RunKind(enum.StrEnum):
    """What a scheduled run is."""

    #: A transient failure's delayed retry.
    RETRY = "retry"
    #: A task parked on a resource gate.
    RESOURCE_WAIT = "resource_wait"


class RunStatus(enum.StrEnum):
    """Lifecycle of a scheduled run."""

    #: Not yet due, or due and not yet published.
    PENDING = "pending"
    #: Published to the broker; no worker has started it yet.
    DISPATCHED = "dispatched"
    #: A worker claimed it and is running it.
    RUNNING = "running"
    #: The run's execution finished (success or a recorded failure).
    DONE = "done"
    #: A resource wait passed its deadline and was dead-lettered.
    EXPIRED = "expired"
    #: Cancelled by an operator (the task was discarded).
    CANCELLED = "cancelled"


class TaskRecord(Base):
    """A task that failed at least once: its payload and its one state."""

    __tablename__ = "fr_tasks"

    task_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    queue: Mapped[str | None] = mapped_column(sa.String(255))
    state: Mapped[TaskState] = mapped_column(enum_type(TaskState, "fr_task_state"), index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Positional arguments, with secret values sealed (encrypted).
    args: Mapped[Any] = mapped_column(Json)
    #: Keyword arguments, with secret values sealed (encrypted).
    kwargs: Mapped[Any] = mapped_column(Json)
    #: Routing and delivery options (exchange, routing_key, priority, ...).
    options: Mapped[Any] = mapped_column(Json)
    #: The message's custom headers, with secret values sealed.
    headers: Mapped[Any] = mapped_column(Json)
    #: False when the payload could not be stored faithfully (not JSON-serialisable).
    replayable: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    root_id: Mapped[str | None] = mapped_column(sa.String(255), index=True)
    parent_id: Mapped[str | None] = mapped_column(sa.String(255))
    #: The dead letter this task is a replay of.
    replay_of: Mapped[int | None] = mapped_column(BigId, index=True)
    last_category: Mapped[str | None] = mapped_column(sa.String(32))
    last_reason: Mapped[str | None] = mapped_column(sa.String(64))
    #: For a failed-fast task, the message for the user.
    user_message: Mapped[str | None] = mapped_column(sa.Text)
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    updated_at: Mapped[dt.datetime]
    terminal_at: Mapped[dt.datetime | None] = mapped_column(index=True)


class FailedAttempt(Base):
    """One failed execution of a task and the decision taken about it."""

    __tablename__ = "fr_failed_attempts"
    __table_args__ = (
        sa.UniqueConstraint("task_id", "attempt", name="uq_fr_failed_attempts_task_attempt"),
        sa.Index("ix_fr_failed_attempts_task_name_failed_at", "task_name", "failed_at"),
        sa.Index("ix_fr_failed_attempts_category_failed_at", "category", "failed_at"),
        sa.Index("ix_fr_failed_attempts_reason_failed_at", "reason", "failed_at"),
        sa.Index("ix_fr_failed_attempts_fingerprint_failed_at", "fingerprint", "failed_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(sa.String(255))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    task_name: Mapped[str] = mapped_column(sa.String(255))
    queue: Mapped[str | None] = mapped_column(sa.String(255))
    worker: Mapped[str | None] = mapped_column(sa.String(255))
    exc_type: Mapped[str | None] = mapped_column(sa.String(255))
    #: The technical message, redacted.
    message: Mapped[str] = mapped_column(sa.Text)
    #: The traceback, redacted.
    traceback: Mapped[str | None] = mapped_column(sa.Text)
    category: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(64))
    resource: Mapped[str | None] = mapped_column(sa.String(64))
    retry_after: Mapped[float | None] = mapped_column(sa.Float)
    fingerprint: Mapped[str] = mapped_column(sa.String(32))
    user_message: Mapped[str | None] = mapped_column(sa.Text)
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    rule: Mapped[str | None] = mapped_column(sa.String(255))
    decision: Mapped[DecisionKind] = mapped_column(enum_type(DecisionKind, "fr_decision_kind"))
    decision_reason: Mapped[str | None] = mapped_column(sa.String(64))
    #: For a retry, when it is due; for a wait, its deadline.
    decision_at: Mapped[dt.datetime | None]
    #: For a retry, the delay in seconds.
    delay: Mapped[float | None] = mapped_column(sa.Float)
    started_at: Mapped[dt.datetime | None]
    failed_at: Mapped[dt.datetime] = mapped_column(index=True)
    duration_ms: Mapped[float | None] = mapped_column(sa.Float)
    #: The most attempts the task's policy allows for this kind of failure ("attempt 2 of 5").
    max_attempts: Mapped[int | None] = mapped_column(sa.Integer)


class ErrorCount(Base):
    """How many attempts of one kind failed in one hour or one day: the roll-up the statistics read.

    One row per ``(period, bucket, task_name, queue, category, reason, fingerprint)``: each attempt is counted
    once in its hour (``period='hour'``) and once in its day (``period='day'``), by an upsert that
    :func:`~error_handling.persistence.failure_recording.record_failure` makes in the transaction that writes
    the attempt, so the counts are exact. ``bucket`` is the start (UTC) of the hour or day.
    """

    __tablename__ = "fr_error_counts"
    __table_args__ = (
        sa.Index("ix_fr_error_counts_fingerprint_period_bucket", "fingerprint", "period", "bucket"),
        sa.Index("ix_fr_error_counts_task_name_period_bucket", "task_name", "period", "bucket"),
    )

    period: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    #: The queue the attempt was delivered from ('' when unknown).
    queue: Mapped[str] = mapped_column(sa.String(255), primary_key=True, server_default="")
    category: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    count: Mapped[int] = mapped_column(sa.BigInteger)


class ScheduledRun(Base):
    """Delayed work as a row: a scheduled retry or a resource wait."""

    __tablename__ = "fr_scheduled_runs"
    __table_args__ = (
        sa.UniqueConstraint("task_id", "attempt", name="uq_fr_scheduled_runs_task_attempt"),
        sa.Index("ix_fr_scheduled_runs_status_due_at", "status", "due_at"),
        sa.CheckConstraint(
            "kind <> 'resource_wait' OR (resource IS NOT NULL AND deadline IS NOT NULL)",
            name="ck_fr_scheduled_runs_wait_has_resource",
        ),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[RunKind] = mapped_column(enum_type(RunKind, "fr_run_kind"))
    task_id: Mapped[str] = mapped_column(sa.String(255))
    #: The attempt number this run will execute as.
    attempt: Mapped[int] = mapped_column(sa.Integer)
    resource: Mapped[str | None] = mapped_column(sa.String(64))
    deadline: Mapped[dt.datetime | None]
    #: When the dispatcher should next act on it.
    due_at: Mapped[dt.datetime]
    status: Mapped[RunStatus] = mapped_column(enum_type(RunStatus, "fr_run_status"))
    #: Identifies the one published message allowed to run it (idempotency with task id + attempt).
    dispatch_token: Mapped[str | None] = mapped_column(sa.String(64))
    dispatch_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    dispatched_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class LostDelivery(Base):
    """A delivery of a task message that ended without an outcome: the worker process running it died
    (a signal, an exit, the kernel's OOM killer, a hard time limit) or the whole worker stopped, and the
    broker delivered the message again. ``delivery`` counts them within one attempt (1, 2, ...); they
    do not count as attempts of the policy."""

    __tablename__ = "fr_lost_deliveries"
    __table_args__ = (
        sa.UniqueConstraint("task_id", "attempt", "delivery", name="uq_fr_lost_deliveries_task_attempt_delivery"),
        sa.Index("ix_fr_lost_deliveries_lost_at", "lost_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(sa.String(255))
    attempt: Mapped[int] = mapped_column(sa.Integer)
    delivery: Mapped[int] = mapped_column(sa.Integer)
    task_name: Mapped[str | None] = mapped_column(sa.String(255))
    #: ``worker_lost`` (the pool process died), ``time_limit`` (killed at the hard time limit), or
    #: ``redelivered`` (the message came back with no report: the whole worker stopped).
    cause: Mapped[str] = mapped_column(sa.String(32))
    #: The worker (hostname) and pool process that ran it, when known.
    worker: Mapped[str | None] = mapped_column(sa.String(255))
    pid: Mapped[int | None] = mapped_column(sa.Integer)
    #: The signal that killed the process (``SIGKILL``) or its exit code, when known.
    signal: Mapped[str | None] = mapped_column(sa.String(32))
    exit_code: Mapped[int | None] = mapped_column(sa.Integer)
    #: Set when the kernel's OOM killer acted in the worker's cgroup at the time, with the limit.
    memory_limit: Mapped[str | None] = mapped_column(sa.String(255))
    detail: Mapped[str | None] = mapped_column(sa.Text)
    started_at: Mapped[dt.datetime | None]
    lost_at: Mapped[dt.datetime]
