"""Reads of the dead-letter queue: which dead letters a filter takes, pages of dead letters (newest first,
keyset pagination), and a letter's failed attempts and replays."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.orm import Session

from error_handling.persistence.cursor import Keyset, Listing, Page
from error_handling.persistence.models import DeadLetterRecord, DeadLetterStatus, FailedAttempt, ReplayRequestRecord
from error_handling.persistence.reads.attempts import FailureFilter

#: Dead letters, newest first by the time they were created.
DEAD_LETTERS: Final = Listing(DeadLetterRecord, DeadLetterRecord.created_at, DeadLetterRecord.message)


@dataclasses.dataclass(frozen=True)
class DeadLetterFilter(FailureFilter):
    """Which dead letters a listing or a bulk replay takes (``since <= created_at < until``); it is
    stored with a bulk replay job as JSON. ``None`` matches anything."""

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
        """The SQL conditions selecting the pending dead letters that match (a bulk replay's)."""
        return self.where(DeadLetterStatus.PENDING)

    def where(self, status: DeadLetterStatus | None) -> list[Any]:
        """The SQL conditions selecting the dead letters that match, in ``status`` (None: any)."""
        found = [] if status is None else [DeadLetterRecord.status == status]
        return found + DEAD_LETTERS.where(self)


#: One page of dead letters.
DeadLetterPage = Page[DeadLetterRecord]


def list_dead_letters(
    session: Session,
    flt: DeadLetterFilter | None = None,
    *,
    status: DeadLetterStatus | None = None,
    cursor: Keyset | None = None,
    limit: int,
) -> DeadLetterPage:
    """Return a page of dead letters, newest first (keyset pagination on ``(created_at, id)``).

    Args:
        flt: which dead letters (None: all).
        status: only the dead letters in this state (None: any).
        cursor: the ``next_cursor`` of the previous page; the page holds the rows strictly after it.
        limit: at most this many rows (at least 1).
    """
    query = sa.select(DeadLetterRecord).where(*(flt or DeadLetterFilter()).where(status))
    return DEAD_LETTERS.page(session, query, cursor=cursor, limit=max(1, limit))


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
