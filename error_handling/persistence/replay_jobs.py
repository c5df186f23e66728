"""Bulk replay jobs (``fr_replay_jobs``): the pending dead letters matching a filter, replayed by the
dispatcher in batches (:mod:`error_handling.persistence.replay_batches`). A job holds the filter, the
rate limit, the counters and the keyset position reached (oldest first, ``(created_at, id)``).
Functions here run in the caller's transaction. Idempotency keys starting with
:data:`IDEMPOTENCY_PREFIX` are the jobs' own; clients may not use them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import uuid
from collections.abc import Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence import audit
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    JobAction,
    ReplayJobRecord,
    ReplayJobStatus,
)
from error_handling.persistence.reads.dlq import DeadLetterFilter
from error_handling.redaction import redact_text

__all__ = [
    "ACTIVE_STATUSES",
    "IDEMPOTENCY_PREFIX",
    "DeadLetterFilter",
    "ReplayJobFinished",
    "ReplayJobNotFound",
    "cancel_job",
    "count_matching",
    "create_job",
    "due_job_ids",
    "fail_job",
    "get_job",
    "has_work",
    "idempotency_key",
    "job_lock",
    "lock_job",
    "release_claims",
    "replay_task_id",
    "sample_matching",
]

_LETTERS: sa.Table = DeadLetterRecord.__table__  # type: ignore[assignment]

#: Jobs a dispatcher still has work to do for.
ACTIVE_STATUSES = (ReplayJobStatus.PENDING, ReplayJobStatus.RUNNING)
#: The prefix of the idempotency keys of the replays jobs make (reserved: refused from clients).
IDEMPOTENCY_PREFIX = "replay-job:"
#: Namespace of the deterministic task ids of bulk replays.
_TASK_ID_NAMESPACE = uuid.UUID("6f2b8f3e-8a53-4c1e-9a61-0d1f0f6a7b21")


class ReplayJobNotFound(FunctionRunnerError):
    """No replay job has this id."""

    def __init__(self, job_id: int) -> None:
        super().__init__(f"replay job {job_id} does not exist")
        self.message = f"replay job {job_id} does not exist"
        self.job_id = job_id


def idempotency_key(job_id: int, dead_letter_id: int) -> str:
    """The idempotency key of the replay of one dead letter by one job."""
    return f"{IDEMPOTENCY_PREFIX}{job_id}:{dead_letter_id}"


def replay_task_id(job_id: int, dead_letter_id: int) -> str:
    """The task id a job publishes a dead letter as: the same on every attempt, so copies can be found."""
    return str(uuid.uuid5(_TASK_ID_NAMESPACE, idempotency_key(job_id, dead_letter_id)))


def count_matching(session: Session, flt: DeadLetterFilter) -> int:
    """How many pending dead letters match."""
    return int(session.execute(sa.select(sa.func.count()).where(*flt.conditions())).scalar_one())


def sample_matching(session: Session, flt: DeadLetterFilter, *, limit: int) -> Sequence[DeadLetterRecord]:
    """Up to ``limit`` matching pending dead letters, oldest first (the ones a job would take first)."""
    return (
        session.execute(
            sa.select(DeadLetterRecord)
            .where(*flt.conditions())
            .order_by(DeadLetterRecord.created_at, DeadLetterRecord.id)
            .limit(max(0, limit))
        )
        .scalars()
        .all()
    )


def create_job(
    session: Session,
    *,
    flt: DeadLetterFilter,
    rate_per_second: float | None,
    now: dt.datetime,
    actor: str = audit.UNKNOWN_ACTOR,
    action: JobAction = JobAction.REPLAY,
    reason: str | None = None,
) -> ReplayJobRecord:
    """Record a new job (``pending``, ``total`` = how many match now) and flush; audited as ``actor``'s
    ``replay_job.create`` in the same transaction. A job discards instead of replaying with ``action``
    :attr:`~JobAction.DISCARD` (``reason``: each letter's discard reason)."""
    job = ReplayJobRecord(
        status=ReplayJobStatus.PENDING,
        action=action,
        reason=reason,
        discarded=0,
        filter=flt.to_json(),
        rate_per_second=rate_per_second,
        total=count_matching(session, flt),
        published=0,
        skipped=0,
        failed=0,
        created_at=now,
        updated_at=now,
    )
    session.add(job)
    session.flush()
    detail = {"action": action.value, "filter": job.filter, "rate_per_second": rate_per_second, "total": job.total}
    if reason is not None:
        detail["reason"] = redact_text(reason)
    audit.record(session, audit.AuditAction.REPLAY_JOB_CREATE, job.id, actor=actor, now=now, detail=detail)
    return job


def get_job(session: Session, *, job_id: int) -> ReplayJobRecord:
    """Return a job.

    Raises:
        ReplayJobNotFound: no job has this id.
    """
    job = session.get(ReplayJobRecord, job_id)
    if job is None:
        raise ReplayJobNotFound(job_id)
    return job


class ReplayJobFinished(FunctionRunnerError):
    """The replay job is already done, cancelled or failed."""

    def __init__(self, job_id: int, status: ReplayJobStatus) -> None:
        self.message = f"replay job {job_id} is already {status.value}"
        super().__init__(self.message)
        self.job_id = job_id
        self.status = status


def cancel_job(session: Session, *, job_id: int, now: dt.datetime, actor: str = audit.UNKNOWN_ACTOR) -> ReplayJobRecord:
    """Cancel a pending or running job: no new batch starts. A batch in flight (recorded, perhaps
    partly published) is still finished, so its letters end up either replayed or pending, never lost.
    Audited as ``actor``'s ``replay_job.cancel`` in the same transaction.

    Raises:
        ReplayJobNotFound: no job has this id.
        ReplayJobFinished: the job is already done, cancelled or failed.
    """
    job = lock_job(session, job_id=job_id, skip_locked=False)
    if job is None:
        raise ReplayJobNotFound(job_id)
    if job.status not in ACTIVE_STATUSES:
        raise ReplayJobFinished(job_id, job.status)
    job.status = ReplayJobStatus.CANCELLED
    job.finished_at = now
    job.updated_at = now
    session.flush()
    detail = {"published": job.published, "total": job.total, "batch_in_flight": job.inflight_until_id is not None}
    audit.record(session, audit.AuditAction.REPLAY_JOB_CANCEL, job.id, actor=actor, now=now, detail=detail)
    return job


def fail_job(session: Session, *, job_id: int, error: str, now: dt.datetime) -> None:
    """Stop a job that cannot progress, with the reason, and give the letters it claimed back to
    ``pending`` (a batch in flight is not finished: another replay may publish them again); nothing if
    it has no work left."""
    job = lock_job(session, job_id=job_id, skip_locked=False)
    if job is None or not has_work(job):
        return
    if job.status in ACTIVE_STATUSES:
        job.status = ReplayJobStatus.FAILED
        job.finished_at = now
    job.error = error[:2000]
    job.inflight_until_created_at = None
    job.inflight_until_id = None
    job.updated_at = now
    release_claims(session, job_id=job.id, now=now)


def release_claims(session: Session, *, job_id: int, now: dt.datetime) -> int:
    """Give the letters ``job_id`` still claims back to ``pending``; how many there were."""
    result = session.execute(
        sa.update(_LETTERS)
        .where(_LETTERS.c.replay_job_id == job_id, _LETTERS.c.status == DeadLetterStatus.REPLAYING)
        .values(status=DeadLetterStatus.PENDING, replay_job_id=None, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def has_work(job: ReplayJobRecord) -> bool:
    """Whether a dispatcher has a batch to process for ``job``: it is active, or it was cancelled with a
    batch in flight (that batch is finished, nothing more)."""
    return job.status in ACTIVE_STATUSES or (
        job.status is ReplayJobStatus.CANCELLED and job.inflight_until_id is not None
    )


def due_job_ids(session: Session, *, now: dt.datetime, limit: int = 10) -> list[int]:
    """Ids of jobs with work (:func:`has_work`) whose next batch may start now, oldest first."""
    return list(
        session.execute(
            sa.select(ReplayJobRecord.id)
            .where(
                sa.or_(
                    ReplayJobRecord.status.in_(ACTIVE_STATUSES),
                    sa.and_(
                        ReplayJobRecord.status == ReplayJobStatus.CANCELLED,
                        ReplayJobRecord.inflight_until_id.is_not(None),
                    ),
                ),
                sa.or_(ReplayJobRecord.next_batch_at.is_(None), ReplayJobRecord.next_batch_at <= now),
            )
            .order_by(ReplayJobRecord.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )


def lock_job(session: Session, *, job_id: int, skip_locked: bool = True) -> ReplayJobRecord | None:
    """The job, its row locked until the transaction ends; None when another transaction holds it."""
    return session.execute(
        sa.select(ReplayJobRecord)
        .where(ReplayJobRecord.id == job_id)
        .with_for_update(skip_locked=skip_locked)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()


#: Advisory-lock namespace of replay jobs (Postgres ``pg_try_advisory_lock(namespace, job id)``).
_LOCK_NAMESPACE = 0x6652


@contextlib.contextmanager
def job_lock(engine: Engine, job_id: int) -> Iterator[bool]:
    """Try to take the lock of job ``job_id``; yields whether it is held (always, but on Postgres)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    connection = engine.connect()
    try:
        held = bool(
            connection.execute(
                sa.text("SELECT pg_try_advisory_lock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": job_id}
            ).scalar_one()
        )
        connection.commit()
        try:
            yield held
        finally:
            if held:
                connection.execute(
                    sa.text("SELECT pg_advisory_unlock(:ns, :id)"), {"ns": _LOCK_NAMESPACE, "id": job_id}
                )
                connection.commit()
    except BaseException:
        connection.invalidate()  # never give a connection that may hold the lock back to the pool
        raise
    finally:
        connection.close()
