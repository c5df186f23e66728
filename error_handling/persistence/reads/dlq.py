"""Reads of the dead-letter queue: pages of dead letters (newest first, keyset pagination), and a
letter's failed attempts and replays."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.cursor import Keyset, keyset_after
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, FailedAttempt, ReplayRequestRecord


@dataclasses.dataclass(frozen=True)
class DeadLetterPage:
    """One page of dead letters, newest first, and where the next page starts (None on the last)."""

    items: list[DeadLetterRecord]
    next_cursor: Keyset | None


def list_dead_letters(
    session: Session,
    *,
    status: DeadLetterStatus | None = None,
    task_name: str | None = None,
    category: str | None = None,
    reason: str | None = None,
    fingerprint: str | None = None,
    queue: str | None = None,
    search: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    cursor: Keyset | None = None,
    limit: int,
) -> DeadLetterPage:
    """Return a page of dead letters, newest first (keyset pagination on ``(created_at, id)``).

    Args:
        status, task_name, category, reason, fingerprint, queue: exact matches.
        search: case-insensitive text in the (redacted) error message.
        since, until: ``since <= created_at < until``.
        cursor: the ``next_cursor`` of the previous page; the page holds the rows strictly after it.
        limit: at most this many rows (at least 1).
    """
    query = sa.select(DeadLetterRecord)
    for column, value in (
        (DeadLetterRecord.status, status),
        (DeadLetterRecord.task_name, task_name),
        (DeadLetterRecord.category, category),
        (DeadLetterRecord.reason, reason),
        (DeadLetterRecord.fingerprint, fingerprint),
        (DeadLetterRecord.queue, queue),
    ):
        if value is not None:
            query = query.where(column == value)
    if search:
        query = query.where(DeadLetterRecord.message.icontains(search, autoescape=True))
    if since is not None:
        query = query.where(DeadLetterRecord.created_at >= since)
    if until is not None:
        query = query.where(DeadLetterRecord.created_at < until)
    if cursor is not None:
        query = query.where(keyset_after(DeadLetterRecord.created_at, DeadLetterRecord.id, cursor))
    size = max(1, limit)
    rows = list(
        session.execute(query.order_by(DeadLetterRecord.created_at.desc(), DeadLetterRecord.id.desc()).limit(size + 1))
        .scalars()
        .all()
    )
    if len(rows) <= size:
        return DeadLetterPage(items=rows, next_cursor=None)
    items = rows[:size]
    return DeadLetterPage(items=items, next_cursor=(items[-1].created_at, items[-1].id))


def attempts_of(session: Session, *, task_id: str) -> Sequence[FailedAttempt]:
    """The failed attempts of a task, oldest first."""
    return (
        session.execute(
            sa.select(FailedAttempt).where(FailedAttempt.task_id == task_id).order_by(FailedAttempt.attempt)
        )
        .scalars()
        .all()
    )


def replays_of(session: Session, *, dead_letter_id: int) -> Sequence[ReplayRequestRecord]:
    """Every replay of a dead letter, oldest first."""
    return (
        session.execute(
            sa.select(ReplayRequestRecord)
            .where(ReplayRequestRecord.dead_letter_id == dead_letter_id)
            .order_by(ReplayRequestRecord.id)
        )
        .scalars()
        .all()
    )
