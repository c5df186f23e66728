"""Reads of the dead-letter queue: pages of dead letters (newest first, keyset pagination), and a
letter's failed attempts and replays."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.cursor import Keyset, narrowed, newest_first
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
    equal = (
        (DeadLetterRecord.status, status),
        (DeadLetterRecord.task_name, task_name),
        (DeadLetterRecord.category, category),
        (DeadLetterRecord.reason, reason),
        (DeadLetterRecord.fingerprint, fingerprint),
        (DeadLetterRecord.queue, queue),
    )
    query = narrowed(
        sa.select(DeadLetterRecord), equal=equal, time_column=DeadLetterRecord.created_at, since=since, until=until
    )
    if search:
        query = query.where(DeadLetterRecord.message.icontains(search, autoescape=True))
    items, next_cursor = newest_first(
        session,
        query,
        time_column=DeadLetterRecord.created_at,
        id_column=DeadLetterRecord.id,
        cursor=cursor,
        limit=max(1, limit),
    )
    return DeadLetterPage(items=items, next_cursor=next_cursor)


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
