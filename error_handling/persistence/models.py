"""SQLAlchemy 2 models: the system of record.

Every table is prefixed ``fr_`` so the schema can live beside an application's own tables, except the
ones the project's brief names (``circuit_breaker_events``: every transition of a circuit breaker).

- ``fr_tasks``: one row per task that failed at least once, with its payload (secrets sealed) and its
  state. A task reaches exactly one terminal state (``succeeded``, ``failed_fast``, ``dead_lettered``,
  ``discarded``); moving out of a terminal state is refused by the repository.
- ``fr_failed_attempts``: every failed execution, unique per ``(task_id, attempt)``.
- ``fr_error_counts``: failed attempts counted per hour and per day and kind (task, category, reason,
  fingerprint), written in the same transaction as each attempt; the statistics read it.
- ``fr_scheduled_runs``: delayed work as rows (invariant 3): scheduled retries (``kind='retry'``) and
  resource waits (``kind='resource_wait'``), unique per ``(task_id, attempt)``.
- ``fr_dead_letters``: tasks that will not be retried automatically, with everything needed to replay.
- ``fr_compensation_steps``: side effects tasks recorded with how to undo them, and each undo's outcome.
- ``fr_resource_gates`` / ``fr_resource_leases``: the gates' last probe state, and capacity leases
  where there is no Redis.
- ``fr_audit_events``: every operator action (who, what, when, on what), written in the action's own
  transaction.
- ``fr_replay_requests``: every replay of a dead letter (the task it published), with the request's
  ``Idempotency-Key`` when it had one (unique: a retried request finds the first replay).
- ``fr_retention_runs``: what each run of the retention role deleted and purged.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

#: Auto-incrementing 64-bit ids on Postgres, SQLite's rowid alias on SQLite.
BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
#: JSON documents: ``jsonb`` on Postgres, JSON text elsewhere.
Json = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[dt.datetime]):
    """A timestamp stored in UTC and always read back timezone-aware."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use timezone-aware UTC times")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


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


class DeadLetterStatus(enum.StrEnum):
    """Lifecycle of a dead letter."""

    #: In the queue, waiting for an operator.
    PENDING = "pending"
    #: Claimed by a bulk replay job (``replay_job_id``) that is publishing it: nobody else may replay or
    #: discard it until the job's batch ends (``replayed``, or back to ``pending``).
    REPLAYING = "replaying"
    #: Published again as a new task.
    REPLAYED = "replayed"
    #: Discarded by an operator.
    DISCARDED = "discarded"


def _enum(enum_cls: type[enum.Enum], name: str) -> sa.Enum:
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


#: Deterministic constraint names, so migrations and models compare equal on every database.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of function-runner's tables."""

    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

    type_annotation_map: ClassVar[dict[Any, Any]] = {dt.datetime: UTCDateTime()}


def utcnow() -> dt.datetime:
    """Return the current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


class TaskRecord(Base):
    """A task that failed at least once: its payload and its one state."""

    __tablename__ = "fr_tasks"

    task_id: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    queue: Mapped[str | None] = mapped_column(sa.String(255))
    state: Mapped[TaskState] = mapped_column(_enum(TaskState, "fr_task_state"), index=True)
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
    terminal_at: Mapped[dt.datetime | None]


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
    decision: Mapped[DecisionKind] = mapped_column(_enum(DecisionKind, "fr_decision_kind"))
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

    One row per ``(period, bucket, task_name, category, reason, fingerprint)``: each attempt is counted
    once in its hour (``period='hour'``) and once in its day (``period='day'``), by an upsert that
    :func:`~error_handling.persistence.repository.record_failure` makes in the transaction that writes
    the attempt, so the counts are exact. ``bucket`` is the start (UTC) of the hour or day.
    """

    __tablename__ = "fr_error_counts"

    period: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    bucket: Mapped[dt.datetime] = mapped_column(primary_key=True)
    task_name: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
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
    kind: Mapped[RunKind] = mapped_column(_enum(RunKind, "fr_run_kind"))
    task_id: Mapped[str] = mapped_column(sa.String(255))
    #: The attempt number this run will execute as.
    attempt: Mapped[int] = mapped_column(sa.Integer)
    resource: Mapped[str | None] = mapped_column(sa.String(64))
    deadline: Mapped[dt.datetime | None]
    #: When the dispatcher should next act on it.
    due_at: Mapped[dt.datetime]
    status: Mapped[RunStatus] = mapped_column(_enum(RunStatus, "fr_run_status"))
    #: Identifies the one published message allowed to run it (idempotency with task id + attempt).
    dispatch_token: Mapped[str | None] = mapped_column(sa.String(64))
    dispatch_count: Mapped[int] = mapped_column(sa.Integer, default=0)
    dispatched_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class DeadLetterRecord(Base):
    """A task that will not be retried automatically, with everything needed to replay it."""

    __tablename__ = "fr_dead_letters"
    __table_args__ = (sa.Index("ix_fr_dead_letters_status_created_at", "status", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    task_name: Mapped[str] = mapped_column(sa.String(255), index=True)
    queue: Mapped[str | None] = mapped_column(sa.String(255))
    #: Why it was dead-lettered (``retries_exhausted``, ``resource_wait_timeout``, or the error's reason).
    reason: Mapped[str] = mapped_column(sa.String(64), index=True)
    category: Mapped[str | None] = mapped_column(sa.String(32))
    #: The reason code of the last failure.
    last_reason: Mapped[str | None] = mapped_column(sa.String(64))
    exc_type: Mapped[str | None] = mapped_column(sa.String(255))
    message: Mapped[str | None] = mapped_column(sa.Text)
    fingerprint: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer)
    args: Mapped[Any] = mapped_column(Json)
    kwargs: Mapped[Any] = mapped_column(Json)
    options: Mapped[Any] = mapped_column(Json)
    headers: Mapped[Any] = mapped_column(Json)
    replayable: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    status: Mapped[DeadLetterStatus] = mapped_column(_enum(DeadLetterStatus, "fr_dead_letter_status"))
    replayed_task_id: Mapped[str | None] = mapped_column(sa.String(255))
    replayed_at: Mapped[dt.datetime | None]
    #: The bulk replay job that claimed it (``replaying``) or replayed it; None otherwise.
    replay_job_id: Mapped[int | None] = mapped_column(BigId)
    discarded_reason: Mapped[str | None] = mapped_column(sa.Text)
    discarded_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(index=True)
    updated_at: Mapped[dt.datetime]
    #: When retention purged its sealed secrets (and its task's), a grace period after it was replayed
    #: or discarded: the payload keeps ``[REDACTED]`` in their place and it can no longer be replayed.
    purged_at: Mapped[dt.datetime | None]


class ReplayRequestRecord(Base):
    """One replay of a dead letter: the new task it published, and the request's idempotency key."""

    __tablename__ = "fr_replay_requests"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The client's ``Idempotency-Key``; a request that repeats it gets this replay back.
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(255), unique=True)
    dead_letter_id: Mapped[int] = mapped_column(BigId, sa.ForeignKey("fr_dead_letters.id"), index=True)
    #: The id of the task the replay published.
    task_id: Mapped[str] = mapped_column(sa.String(255), unique=True)
    #: The queue it was published to, when the operator chose one.
    queue: Mapped[str | None] = mapped_column(sa.String(255))
    #: Whether it replayed a dead letter that had been replayed before.
    forced: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[dt.datetime]


class ReplayJobStatus(enum.StrEnum):
    """Lifecycle of a bulk replay job."""

    #: Created; no dispatcher has started it yet.
    PENDING = "pending"
    #: A dispatcher has processed at least one batch.
    RUNNING = "running"
    #: Every matching dead letter was handled.
    DONE = "done"
    #: Stopped by an operator.
    CANCELLED = "cancelled"
    #: Stopped by an error it cannot get past (see ``error``).
    FAILED = "failed"


class ReplayJobRecord(Base):
    """A bulk replay of the pending dead letters matching a filter, processed by the dispatcher in batches.

    ``position_created_at``/``position_id`` is the keyset (oldest first) of the last dead letter handled:
    the job resumes after it. ``inflight_until_*`` marks a batch recorded but perhaps not fully
    published (a dispatcher died in between): the next pass checks the broker before publishing it again.
    """

    __tablename__ = "fr_replay_jobs"
    __table_args__ = (sa.Index("ix_fr_replay_jobs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    status: Mapped[ReplayJobStatus] = mapped_column(_enum(ReplayJobStatus, "fr_replay_job_status"))
    #: The dead-letter filter (task_name, category, reason, fingerprint, queue, search, since, until).
    filter: Mapped[Any] = mapped_column(Json)
    #: At most this many publishes per second (None: unlimited).
    rate_per_second: Mapped[float | None] = mapped_column(sa.Float)
    #: How many dead letters matched when the job was created.
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    published: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    position_created_at: Mapped[dt.datetime | None]
    position_id: Mapped[int | None] = mapped_column(BigId)
    inflight_until_created_at: Mapped[dt.datetime | None]
    inflight_until_id: Mapped[int | None] = mapped_column(BigId)
    #: Rate limit: the next batch may start at this time (shared by every dispatcher).
    next_batch_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    finished_at: Mapped[dt.datetime | None]
    error: Mapped[str | None] = mapped_column(sa.Text)


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
    status: Mapped[StepStatus] = mapped_column(_enum(StepStatus, "fr_step_status"))
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


class ResourceGate(Base):
    """The last state a monitor saw of a resource gate (the API reads it; the gates live in code)."""

    __tablename__ = "fr_resource_gates"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: At most this many units held at once, cluster-wide (None: no capacity, a probe only).
    capacity: Mapped[int | None] = mapped_column(sa.Integer)
    #: What the probe checks, e.g. ``disk_free(/data) >= 10 GiB``.
    probe: Mapped[str | None] = mapped_column(sa.String(255))
    #: The probe's last verdict (None: no probe, or not evaluated yet).
    available: Mapped[bool | None] = mapped_column(sa.Boolean)
    #: What the probe read, e.g. ``12.5 GiB free``.
    detail: Mapped[str | None] = mapped_column(sa.Text)
    checked_at: Mapped[dt.datetime | None]
    #: The monitor that wrote this (``kind@host:pid``).
    monitor: Mapped[str | None] = mapped_column(sa.String(255))
    updated_at: Mapped[dt.datetime]


class ResourceLease(Base):
    """Units of a gate held by a task (or reserved for a released one), until ``expires_at``.

    Used where there is no Redis (the embedded default); with Redis the leases live there.
    """

    __tablename__ = "fr_resource_leases"
    __table_args__ = (sa.Index("ix_fr_resource_leases_gate_expires_at", "gate", "expires_at"),)

    gate: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    #: Who holds it: the task id (and attempt) it was acquired or reserved for.
    holder: Mapped[str] = mapped_column(sa.String(255), primary_key=True)
    units: Mapped[int] = mapped_column(sa.Integer)
    expires_at: Mapped[dt.datetime]


class CircuitBreakerEvent(Base):
    """A transition of a service's circuit breaker: opened, half-opened, closed, reset or forced open."""

    __tablename__ = "circuit_breaker_events"
    __table_args__ = (sa.Index("ix_circuit_breaker_events_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(sa.String(128))
    from_state: Mapped[str] = mapped_column(sa.String(16))
    to_state: Mapped[str] = mapped_column(sa.String(16))
    #: ``failure_ratio`` (opened by the calls), ``probe`` (half-open probe outcome), ``timeout`` (the
    #: open period ended), ``reset`` / ``forced_open`` (an operator), ``local`` (a per-process breaker).
    cause: Mapped[str] = mapped_column(sa.String(32))
    #: Calls and failures in the window when it opened.
    calls: Mapped[int] = mapped_column(sa.Integer, default=0)
    failures: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: The process that saw it (``host:pid``), or the operator's API.
    actor: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[dt.datetime]


class ServiceHealth(Base):
    """Calls of one service seen by one process in one minute: counts and a latency histogram
    (``{"<upper bound ms>": count}``, mergeable across processes)."""

    __tablename__ = "ai_service_health"
    __table_args__ = (sa.Index("ix_ai_service_health_service_minute", "service", "minute"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(sa.String(128))
    #: The UTC minute the calls ended in.
    minute: Mapped[dt.datetime]
    #: The process that made them (``host:pid``).
    actor: Mapped[str] = mapped_column(sa.String(255))
    calls: Mapped[int] = mapped_column(sa.Integer)
    failures: Mapped[int] = mapped_column(sa.Integer)
    latency_histogram: Mapped[Any] = mapped_column(Json)


class ServiceError(Base):
    """A failed call of a service: its classification (message redacted)."""

    __tablename__ = "ai_service_errors"
    __table_args__ = (sa.Index("ix_ai_service_errors_service_at", "service", "at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    service: Mapped[str] = mapped_column(sa.String(128))
    category: Mapped[str] = mapped_column(sa.String(32))
    reason: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int | None] = mapped_column(sa.Integer)
    message: Mapped[str] = mapped_column(sa.Text)
    latency_ms: Mapped[float | None] = mapped_column(sa.Float)
    at: Mapped[dt.datetime]


class FallbackEvent(Base):
    """A call of a fallback chain that was not answered by its first provider: served by a later
    provider, or by the degraded result (``degraded``), with the providers passed over and why."""

    __tablename__ = "ai_fallback_events"
    __table_args__ = (
        sa.Index("ix_ai_fallback_events_service_at", "service", "at"),
        sa.Index("ix_ai_fallback_events_task_id", "task_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The logical service of the chain (``chat``).
    service: Mapped[str] = mapped_column(sa.String(128))
    #: The provider that answered; None when the degraded result did.
    provider: Mapped[str | None] = mapped_column(sa.String(128))
    degraded: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    #: ``[{"provider": ..., "reason": ...}]``: the providers passed over, in chain order.
    passed_over: Mapped[Any] = mapped_column(Json)
    #: The task that made the call, when it was made inside one.
    task_id: Mapped[str | None] = mapped_column(sa.String(255))
    task_name: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[dt.datetime]


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
