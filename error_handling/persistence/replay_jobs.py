"""Bulk replay jobs: the pending dead letters matching a filter, replayed by the dispatcher in batches.

A job is a row (``fr_replay_jobs``) holding the filter, the rate limit, the counters and the keyset
position reached (oldest first, ``(created_at, id)``). A batch is processed in two short transactions
with the broker publish between them (see :mod:`function_runner.bulk_replay`):

1. :func:`begin_batch`: the next pending letters after the position are selected (``FOR UPDATE SKIP
   LOCKED``) and *claimed*: ``replaying``, with the job's id, so a single replay, a discard or another
   job cannot take them while they are published; the keyset of the last one is stored as the job's
   *in-flight* bound; then committed;
2. the letters are published;
3. :func:`finish_batch`: the published letters are marked replayed (each with a replay request whose
   idempotency key is derived from the job and the dead letter), the batch's other claimed letters
   (not replayable, or their secrets could not be unsealed) go back to ``pending``, the position
   advances, the in-flight bound is cleared, then committed.

A dispatcher that dies between 1 and 3 leaves the in-flight bound set and the letters claimed: the next
pass (any dispatcher; the job is still active) re-selects the letters the job claimed
(:func:`begin_batch` returns them with ``recovering=True``) and publishes only those the broker does not
hold yet. A claim never outlives its job's batch: it ends in 3, or when the job fails
(:func:`fail_job` gives the letters back to ``pending``). Functions here run in the caller's transaction.

Idempotency keys starting with :data:`IDEMPOTENCY_PREFIX` are the jobs' own; clients may not use them.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.exceptions import FunctionRunnerError
from error_handling.persistence import audit
from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    ReplayJobRecord,
    ReplayJobStatus,
    ReplayRequestRecord,
)

__all__ = [
    "ACTIVE_STATUSES",
    "IDEMPOTENCY_PREFIX",
    "BatchPlan",
    "DeadLetterFilter",
    "ReplayJobFinished",
    "ReplayJobNotFound",
    "begin_batch",
    "cancel_job",
    "count_matching",
    "create_job",
    "due_job_ids",
    "fail_job",
    "finish_batch",
    "get_job",
    "has_work",
    "idempotency_key",
    "lock_job",
    "release_claims",
    "replay_task_id",
    "sample_matching",
]

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


@dataclasses.dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters a bulk replay takes (only ``pending`` ones, always). ``None`` matches anything."""

    task_name: str | None = None
    category: str | None = None
    reason: str | None = None
    fingerprint: str | None = None
    queue: str | None = None
    #: Case-insensitive text in the (redacted) error message.
    search: str | None = None
    #: ``since <= created_at < until``.
    since: dt.datetime | None = None
    until: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        """The filter as a JSON document (times in ISO 8601), without the unset fields."""
        document: dict[str, Any] = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if value is not None:
                document[field.name] = value.isoformat() if isinstance(value, dt.datetime) else value
        return document

    @classmethod
    def from_json(cls, document: Any) -> DeadLetterFilter:
        """The filter stored by :meth:`to_json`."""
        values: dict[str, Any] = dict(document or {})
        for name in ("since", "until"):
            if values.get(name) is not None:
                values[name] = dt.datetime.fromisoformat(values[name])
        return cls(**values)

    def conditions(self) -> list[Any]:
        """The SQL conditions selecting the pending dead letters that match."""
        found: list[Any] = [DeadLetterRecord.status == DeadLetterStatus.PENDING]
        for column, value in (
            (DeadLetterRecord.task_name, self.task_name),
            (DeadLetterRecord.category, self.category),
            (DeadLetterRecord.reason, self.reason),
            (DeadLetterRecord.fingerprint, self.fingerprint),
            (DeadLetterRecord.queue, self.queue),
        ):
            if value is not None:
                found.append(column == value)
        if self.search:
            found.append(DeadLetterRecord.message.icontains(self.search, autoescape=True))
        if self.since is not None:
            found.append(DeadLetterRecord.created_at >= self.since)
        if self.until is not None:
            found.append(DeadLetterRecord.created_at < self.until)
        return found


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
) -> ReplayJobRecord:
    """Record a new job (``pending``, ``total`` = how many match now) and flush; audited as ``actor``'s
    ``replay_job.create`` in the same transaction."""
    job = ReplayJobRecord(
        status=ReplayJobStatus.PENDING,
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
    audit.record(
        session,
        actor=actor,
        action=audit.AuditAction.REPLAY_JOB_CREATE,
        target_type=audit.AuditTarget.REPLAY_JOB,
        target_id=job.id,
        detail={"filter": job.filter, "rate_per_second": rate_per_second, "total": job.total},
        now=now,
    )
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
    audit.record(
        session,
        actor=actor,
        action=audit.AuditAction.REPLAY_JOB_CANCEL,
        target_type=audit.AuditTarget.REPLAY_JOB,
        target_id=job.id,
        detail={"published": job.published, "total": job.total, "batch_in_flight": job.inflight_until_id is not None},
        now=now,
    )
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


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """The letters of one batch. ``recovering``: an earlier attempt may have published some of them."""

    job_id: int
    letters: list[DeadLetterRecord]
    recovering: bool


def _after(job: ReplayJobRecord) -> Any:
    if job.position_created_at is None or job.position_id is None:
        return sa.true()
    return sa.or_(
        DeadLetterRecord.created_at > job.position_created_at,
        sa.and_(DeadLetterRecord.created_at == job.position_created_at, DeadLetterRecord.id > job.position_id),
    )


def begin_batch(session: Session, *, job: ReplayJobRecord, limit: int, now: dt.datetime) -> BatchPlan:
    """Select and claim the next letters of ``job`` (locked) and store the in-flight bound; the caller
    commits.

    The letters are the next ``limit`` pending ones matching the filter after the job's position, taken
    ``FOR UPDATE SKIP LOCKED`` (a letter another transaction holds, a single replay or another job's
    claim, is left to it) and claimed: ``replaying`` with the job's id. When the job has an in-flight
    bound already (a batch that was not finished), the letters it claimed are returned again with
    ``recovering=True``. When no letter is left, the job becomes ``done``.
    """
    recovering = job.inflight_until_created_at is not None and job.inflight_until_id is not None
    if recovering:
        query = sa.select(DeadLetterRecord).where(
            DeadLetterRecord.status == DeadLetterStatus.REPLAYING, DeadLetterRecord.replay_job_id == job.id
        )
        query = query.order_by(DeadLetterRecord.created_at, DeadLetterRecord.id).with_for_update()
    else:
        flt = DeadLetterFilter.from_json(job.filter)
        query = (
            sa.select(DeadLetterRecord)
            .where(*flt.conditions(), _after(job))
            .order_by(DeadLetterRecord.created_at, DeadLetterRecord.id)
            .limit(max(1, limit))
            .with_for_update(skip_locked=True)
        )
    letters = list(session.execute(query.execution_options(populate_existing=True)).scalars().all())
    job.updated_at = now
    if not letters and not recovering:
        job.status = ReplayJobStatus.DONE
        job.finished_at = now
        return BatchPlan(job_id=job.id, letters=[], recovering=False)
    if job.status is ReplayJobStatus.PENDING:
        job.status = ReplayJobStatus.RUNNING
    if letters and not recovering:
        session.execute(
            sa.update(_LETTERS)
            .where(_LETTERS.c.id.in_([letter.id for letter in letters]))
            .values(status=DeadLetterStatus.REPLAYING, replay_job_id=job.id, updated_at=now)
        )
        job.inflight_until_created_at = letters[-1].created_at
        job.inflight_until_id = letters[-1].id
    return BatchPlan(job_id=job.id, letters=letters, recovering=recovering)


_LETTERS: sa.Table = DeadLetterRecord.__table__  # type: ignore[assignment]
_REQUESTS: sa.Table = ReplayRequestRecord.__table__  # type: ignore[assignment]
#: Marks one dead letter replayed (run for a whole batch at once, ``executemany``).
_MARK_REPLAYED = (
    sa.update(_LETTERS)
    .where(_LETTERS.c.id == sa.bindparam("b_id"))
    .values(
        status=DeadLetterStatus.REPLAYED,
        replayed_task_id=sa.bindparam("b_task_id"),
        replayed_at=sa.bindparam("b_now", type_=_LETTERS.c.replayed_at.type),
        updated_at=sa.bindparam("b_now", type_=_LETTERS.c.updated_at.type),
    )
)


def _mark_replayed(session: Session, *, job_id: int, published: dict[int, str], now: dt.datetime) -> None:
    """Mark the batch's published letters replayed, each with its replay request, in three statements
    (Core: the letters' payloads are neither read nor written). Only letters the job still claims are
    marked (a claimed letter cannot be replayed or discarded by anyone else)."""
    kept = list(
        session.execute(
            sa.select(_LETTERS.c.id)
            .where(
                _LETTERS.c.id.in_(list(published)),
                _LETTERS.c.status == DeadLetterStatus.REPLAYING,
                _LETTERS.c.replay_job_id == job_id,
            )
            .order_by(_LETTERS.c.id)
            .with_for_update()
        ).scalars()
    )
    if not kept:
        return
    session.execute(
        _MARK_REPLAYED, [{"b_id": letter_id, "b_task_id": published[letter_id], "b_now": now} for letter_id in kept]
    )
    session.execute(
        sa.insert(_REQUESTS),
        [
            {
                "idempotency_key": idempotency_key(job_id, letter_id),
                "dead_letter_id": letter_id,
                "task_id": published[letter_id],
                "queue": None,
                "forced": False,
                "created_at": now,
            }
            for letter_id in kept
        ],
    )


def finish_batch(
    session: Session,
    *,
    job: ReplayJobRecord,
    published: dict[int, str],
    skipped: int,
    failed: int,
    next_batch_at: dt.datetime | None,
    now: dt.datetime,
    done: bool = False,
) -> None:
    """Record a batch: mark each published letter replayed, give the batch's other claimed letters back to
    ``pending``, advance the position, clear the in-flight bound.

    Args:
        job: the job (locked).
        published: ``{dead letter id: task id}`` of the letters published by the batch.
        skipped, failed: letters of the batch that were not published, and why.
        next_batch_at: when the next batch may start (rate limit).
        done: no letter is left after this batch: the job becomes ``done``.
    """
    if published:
        _mark_replayed(session, job_id=job.id, published=published, now=now)
    release_claims(session, job_id=job.id, now=now)
    if job.inflight_until_created_at is not None:
        job.position_created_at = job.inflight_until_created_at
        job.position_id = job.inflight_until_id
    job.inflight_until_created_at = None
    job.inflight_until_id = None
    job.published += len(published)
    job.skipped += skipped
    job.failed += failed
    job.next_batch_at = next_batch_at
    job.updated_at = now
    if done and job.status in ACTIVE_STATUSES:
        job.status = ReplayJobStatus.DONE
        job.finished_at = now
    session.flush()
