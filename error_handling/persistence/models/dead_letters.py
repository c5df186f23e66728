"""Tables of the dead-letter queue: dead letters, the replays published from them and bulk replay jobs."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from error_handling.persistence.models.base import Base, BigId, Json, enum_type


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
    status: Mapped[DeadLetterStatus] = mapped_column(enum_type(DeadLetterStatus, "fr_dead_letter_status"))
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


class JobAction(enum.StrEnum):
    """What a bulk job does with each pending dead letter its filter takes."""

    #: Publish it again (a replay job).
    REPLAY = "replay"
    #: Discard it, as ``DELETE /dead-letters/{id}`` discards one (a discard job).
    DISCARD = "discard"


class ReplayJobRecord(Base):
    """A bulk replay (or discard, ``action``) of the pending dead letters matching a filter, processed by the
    dispatcher in batches.

    ``position_created_at``/``position_id`` is the keyset (oldest first) of the last dead letter handled:
    the job resumes after it. ``inflight_until_*`` marks a batch recorded but perhaps not fully
    published (a dispatcher died in between): the next pass checks the broker before publishing it again.
    """

    __tablename__ = "fr_replay_jobs"
    __table_args__ = (sa.Index("ix_fr_replay_jobs_status_id", "status", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    status: Mapped[ReplayJobStatus] = mapped_column(enum_type(ReplayJobStatus, "fr_replay_job_status"))
    #: What it does with each letter: replay it (the default) or discard it.
    action: Mapped[JobAction] = mapped_column(
        enum_type(JobAction, "fr_job_action"), default=JobAction.REPLAY, server_default=JobAction.REPLAY.value
    )
    #: The dead-letter filter (task_name, category, reason, fingerprint, queue, search, since, until).
    filter: Mapped[Any] = mapped_column(Json)
    #: At most this many publishes per second (None: unlimited).
    rate_per_second: Mapped[float | None] = mapped_column(sa.Float)
    #: How many dead letters matched when the job was created.
    total: Mapped[int] = mapped_column(sa.Integer, default=0)
    published: Mapped[int] = mapped_column(sa.Integer, default=0)
    skipped: Mapped[int] = mapped_column(sa.Integer, default=0)
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    #: Letters a discard job discarded.
    discarded: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    #: Why a discard job discards (each letter's ``discarded_reason``).
    reason: Mapped[str | None] = mapped_column(sa.Text)
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
