"""One batch of a discard job (a bulk job whose action is ``discard``), in one transaction.

The batch takes the next pending letters of the job's filter after its position (oldest first, ``FOR
UPDATE SKIP LOCKED``: a letter another transaction holds is left to it), discards each one as
``DELETE /dead-letters/{id}`` discards one (:func:`~error_handling.persistence.dead_letters.discard`: its
task ``discarded``, its scheduled runs cancelled, its saga's compensation pending, audited), advances the
position and counts them, and commits all of it at once: a batch is done whole or not at all, so a
dispatcher that dies mid-batch leaves nothing half done, and a letter is never discarded twice (a
discarded letter is no longer pending).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence import dead_letters
from error_handling.persistence.models import DeadLetterRecord, ReplayJobRecord, ReplayJobStatus
from error_handling.persistence.replay_batches import after_position
from error_handling.persistence.replay_jobs import ACTIVE_STATUSES, DeadLetterFilter

__all__ = ["DiscardBatch", "actor_of", "discard_batch"]

#: A letter's discard reason when the job was given none.
DEFAULT_REASON = "discarded by a bulk discard job"


@dataclasses.dataclass(frozen=True)
class DiscardBatch:
    """What one batch discarded, and whether the job is done."""

    job_id: int
    discarded: int
    done: bool


def actor_of(job: ReplayJobRecord) -> str:
    """Who each letter's discard is audited as: the job (its creation names the operator)."""
    return f"replay_job:{job.id}"


def discard_batch(session: Session, *, job: ReplayJobRecord, limit: int, now: dt.datetime) -> DiscardBatch:
    """Discard the next ``limit`` pending letters of ``job`` (locked by the caller), in the caller's
    transaction; the job becomes ``done`` when fewer were left."""
    flt = DeadLetterFilter.from_json(job.filter)
    ids = list(
        session.execute(
            sa.select(DeadLetterRecord.id, DeadLetterRecord.created_at)
            .where(*flt.conditions(), after_position(job))
            .order_by(DeadLetterRecord.created_at, DeadLetterRecord.id)
            .limit(max(1, limit))
            .with_for_update(skip_locked=True)
        ).all()
    )
    reason = job.reason or DEFAULT_REASON
    for letter_id, _ in ids:
        dead_letters.discard(session, dead_letter_id=letter_id, reason=reason, now=now, actor=actor_of(job))
    if ids:
        job.position_created_at, job.position_id = ids[-1][1], ids[-1][0]
    if job.status is ReplayJobStatus.PENDING:
        job.status = ReplayJobStatus.RUNNING
    job.discarded += len(ids)
    job.updated_at = now
    done = len(ids) < max(1, limit)
    if done and job.status in ACTIVE_STATUSES:
        job.status = ReplayJobStatus.DONE
        job.finished_at = now
    session.flush()
    return DiscardBatch(job_id=job.id, discarded=len(ids), done=done)
