"""One batch of a bulk replay job, in two short transactions with the broker publish between them::

    begin_batch ──commit──► publish the letters ──► finish_batch ──commit
    (claim: replaying,       (function_runner.dispatch)   (replayed + replay requests; the rest back to
     in-flight bound set)                                  pending; position advances; bound cleared)

A dispatcher that dies between the two leaves the in-flight bound set and the letters claimed: the next
pass re-selects the letters the job claimed (``recovering=True``) and publishes only those the broker
does not hold yet. A claim never outlives its job's batch: it ends in :func:`finish_batch`, or when the
job fails (:func:`~error_handling.persistence.replay_jobs.fail_job`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import (
    DeadLetterRecord,
    DeadLetterStatus,
    ReplayJobRecord,
    ReplayJobStatus,
    ReplayRequestRecord,
)
from error_handling.persistence.replay_jobs import ACTIVE_STATUSES, DeadLetterFilter, idempotency_key, release_claims


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """The letters of one batch. ``recovering``: an earlier attempt may have published some of them."""

    job_id: int
    letters: list[DeadLetterRecord]
    recovering: bool


def after_position(job: ReplayJobRecord) -> Any:
    """The SQL condition selecting the letters after the job's position (oldest first)."""
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
            .where(*flt.conditions(), after_position(job))
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
