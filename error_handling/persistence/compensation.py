"""Compensation steps: recorded by tasks, made pending on a terminal failure, claimed one at a time.

A step is a side effect a task made, with how to undo it (``fr_compensation_steps``). Its lifecycle:

- ``recorded`` by :func:`record_step` while its task runs (its own short transaction);
- ``pending`` when its task, or a later task of the same saga (a Celery chain: the same root id), fails
  for good: :func:`mark_pending`, called in the transaction that records the terminal outcome;
- ``running`` while a compensator holds it (:func:`claim_next`: the saga's newest open step, so undos run
  newest first and one at a time); a claim older than the lease may be taken over (its holder died);
- ``compensated``, ``skipped`` or ``compensation_failed`` (:func:`finish_step`, :func:`fail_open_steps`);
  a failed compensation is reopened by :func:`reopen_failed` when its dead letter is replayed.

Functions here run in the caller's transaction.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.models import CompensationStep, StepStatus
from error_handling.persistence.projection import copy_fields, rows_where

__all__ = [
    "OPEN_STATUSES",
    "Claim",
    "claim_next",
    "fail_open_steps",
    "finish_step",
    "mark_pending",
    "record_step",
    "release_step",
    "reopen_failed",
    "saga_steps",
    "sagas_to_sweep",
    "step_key",
    "task_steps",
    "touch_saga",
]

#: Steps a compensator still has to undo.
OPEN_STATUSES = (StepStatus.PENDING, StepStatus.RUNNING)


def step_key(task_id: str, attempt: int, seq: int) -> str:
    """The default idempotency key of a step: each recorded step is its own side effect."""
    return f"{task_id}:{attempt}:{seq}"


def record_step(
    session: Session,
    *,
    task_id: str,
    saga_id: str,
    task_name: str,
    attempt: int,
    name: str,
    undo_kind: str,
    undo: Any,
    data: Any,
    idempotency_key: str | None,
    now: dt.datetime,
) -> CompensationStep:
    """Record a step (``recorded``). A step whose idempotency key exists already is not recorded again:
    the existing one is returned."""
    seq = (
        session.execute(
            sa.select(sa.func.count()).select_from(CompensationStep).where(CompensationStep.task_id == task_id)
        ).scalar_one()
        + 1
    )
    key = idempotency_key or step_key(task_id, attempt, seq)
    existing = session.execute(
        sa.select(CompensationStep).where(CompensationStep.idempotency_key == key)
    ).scalar_one_or_none()
    if existing is not None:
        return existing
    step = CompensationStep(
        task_id=task_id,
        saga_id=saga_id,
        task_name=task_name,
        attempt=attempt,
        seq=seq,
        name=name,
        undo_kind=undo_kind,
        undo=undo,
        data=data,
        idempotency_key=key,
        status=StepStatus.RECORDED,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    session.add(step)
    session.flush()
    return step


def mark_pending(session: Session, *, saga_id: str, now: dt.datetime, task_id: str | None = None) -> int:
    """Make the recorded steps of a saga (or, with ``task_id``, of one task) pending; return how many."""
    condition = [CompensationStep.saga_id == saga_id, CompensationStep.status == StepStatus.RECORDED]
    if task_id is not None:
        condition.append(CompensationStep.task_id == task_id)
    result = session.execute(
        sa.update(CompensationStep).where(*condition).values(status=StepStatus.PENDING, updated_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def mark_sagas_pending(session: Session, *, saga_ids: Sequence[str], now: dt.datetime) -> dict[str, int]:
    """Make the recorded steps of several sagas pending (one statement); return how many per saga
    (sagas with none are left out)."""
    if not saga_ids:
        return {}
    rows = session.execute(
        sa.update(CompensationStep)
        .where(CompensationStep.saga_id.in_(saga_ids), CompensationStep.status == StepStatus.RECORDED)
        .values(status=StepStatus.PENDING, updated_at=now)
        .returning(CompensationStep.saga_id)
    ).scalars()
    return dict(collections.Counter(rows))


@dataclasses.dataclass(frozen=True)
class Claim:
    """A step a compensator holds: run its undo, then :func:`finish_step` (or :func:`release_step`)."""

    step_id: int
    name: str
    undo_kind: str
    undo: Any
    data: Any
    idempotency_key: str
    task_id: str
    attempts: int


def claim_next(session: Session, *, saga_id: str, token: str, now: dt.datetime, lease: dt.timedelta) -> Claim | None:
    """Claim the saga's newest open step, or None when no step is left or another compensator holds
    the newest one (undos run one at a time, newest first). A claim is taken over when it is older than
    ``lease`` or was made with the same ``token`` (the same delivery, run again after its worker died).
    """
    step = session.execute(
        sa.select(CompensationStep)
        .where(CompensationStep.saga_id == saga_id, CompensationStep.status.in_(OPEN_STATUSES))
        .order_by(CompensationStep.created_at.desc(), CompensationStep.id.desc())
        .limit(1)
        .with_for_update()
    ).scalar_one_or_none()
    if step is None:
        return None
    held_by_another = step.status is StepStatus.RUNNING and step.claim_token != token
    if held_by_another and step.claimed_at is not None and step.claimed_at > now - lease:
        return None
    step.status = StepStatus.RUNNING
    step.claim_token = token
    step.claimed_at = now
    step.attempts += 1
    step.updated_at = now
    return copy_fields(Claim, step, step_id=step.id)


def finish_step(
    session: Session, *, step_id: int, token: str, status: StepStatus, now: dt.datetime, error: str | None = None
) -> bool:
    """Record the outcome of a claimed step; False (nothing written) if the claim was taken over."""
    step = session.get(CompensationStep, step_id, with_for_update=True)
    if step is None or step.status is not StepStatus.RUNNING or step.claim_token != token:
        return False
    step.status = status
    step.last_error = error
    step.updated_at = now
    step.finished_at = now
    return True


def release_step(session: Session, *, step_id: int, token: str, error: str, now: dt.datetime) -> None:
    """Give a claimed step back (``pending``) after its undo failed, with the error; it is tried again."""
    step = session.get(CompensationStep, step_id, with_for_update=True)
    if step is None or step.status is not StepStatus.RUNNING or step.claim_token != token:
        return
    step.status = StepStatus.PENDING
    step.claim_token = None
    step.claimed_at = None
    step.last_error = error
    step.updated_at = now


def fail_open_steps(session: Session, *, saga_id: str, now: dt.datetime) -> int:
    """Mark the saga's open steps ``compensation_failed`` (its compensation failed for good)."""
    result = session.execute(
        sa.update(CompensationStep)
        .where(CompensationStep.saga_id == saga_id, CompensationStep.status.in_(OPEN_STATUSES))
        .values(status=StepStatus.COMPENSATION_FAILED, claim_token=None, updated_at=now, finished_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def reopen_failed(session: Session, *, saga_id: str, now: dt.datetime) -> int:
    """Make the saga's failed steps pending again (a replay of its compensation); return how many."""
    result = session.execute(
        sa.update(CompensationStep)
        .where(CompensationStep.saga_id == saga_id, CompensationStep.status == StepStatus.COMPENSATION_FAILED)
        .values(status=StepStatus.PENDING, updated_at=now, finished_at=None)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def touch_saga(session: Session, *, saga_id: str, now: dt.datetime) -> None:
    """Note that a compensation was published for the saga's open steps (the sweep waits again)."""
    session.execute(
        sa.update(CompensationStep)
        .where(CompensationStep.saga_id == saga_id, CompensationStep.status == StepStatus.PENDING)
        .values(updated_at=now)
    )


def sagas_to_sweep(
    session: Session, *, quiet_since: dt.datetime, stale_claims_since: dt.datetime, limit: int = 100
) -> list[str]:
    """Sagas whose compensation seems lost: a pending step untouched since ``quiet_since`` (its
    compensation was never published, or its compensator died between steps), or a running step
    claimed before ``stale_claims_since`` (its compensator died mid-undo)."""
    return list(
        session.execute(
            sa.select(CompensationStep.saga_id)
            .where(
                sa.or_(
                    sa.and_(CompensationStep.status == StepStatus.PENDING, CompensationStep.updated_at < quiet_since),
                    sa.and_(
                        CompensationStep.status == StepStatus.RUNNING,
                        CompensationStep.claimed_at < stale_claims_since,
                    ),
                )
            )
            .distinct()
            .limit(limit)
        ).scalars()
    )


def task_steps(session: Session, *, task_id: str) -> Sequence[CompensationStep]:
    """The steps one task recorded, in the order it recorded them."""
    return rows_where(session, CompensationStep.task_id, task_id, order_by=CompensationStep.id)


def saga_steps(session: Session, *, saga_id: str) -> Sequence[CompensationStep]:
    """Every step of a saga, in the order they were recorded."""
    return rows_where(session, CompensationStep.saga_id, saga_id, order_by=CompensationStep.id)
